# agentd in a container: the config in /etc/agentd, the data (store, worktrees, logs,
# deployment history) and the repository in /var/lib/agentd.
#   docker build -t agentd .
#   docker run -v $PWD/agentd.yaml:/etc/agentd/agentd.yaml:ro -v agentd-data:/var/lib/agentd \
#     -e OPENAI_API_KEY agentd
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p agentd

FROM debian:bookworm-slim
# git for push/pull/worktrees, ssh for direct deploys, python3 for pytest projects.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client python3 python3-pytest \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/agentd --shell /usr/sbin/nologin agentd \
 && mkdir -p /etc/agentd && chown agentd:agentd /var/lib/agentd
COPY --from=build /src/target/release/agentd /usr/local/bin/agentd
USER agentd
WORKDIR /var/lib/agentd
VOLUME ["/etc/agentd", "/var/lib/agentd"]
ENV AGENTD_CONFIG=/etc/agentd/agentd.yaml \
    AGENTD_MEMORY__PATH=/var/lib/agentd/.agentd/memory.db
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464"]
ENTRYPOINT ["agentd"]
CMD ["run", "--metrics-addr", "0.0.0.0:9464", "--log-format", "json"]
