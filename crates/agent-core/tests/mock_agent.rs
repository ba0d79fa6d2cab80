#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `MockAgent` is usable as `Arc<dyn Agent>` by the layers above.

use std::sync::Arc;

use agentd_agent_core::{Agent, MockAgent, Role};

#[test]
fn mock_agent_stands_in_for_a_real_one() {
    let mut mock = MockAgent::new();
    mock.expect_name().return_const("qa-1".to_owned());
    mock.expect_role().return_const(Role::Qa);
    let agent: Arc<dyn Agent> = Arc::new(mock);
    assert_eq!(agent.name(), "qa-1");
    assert_eq!(agent.role(), &Role::Qa);
}
