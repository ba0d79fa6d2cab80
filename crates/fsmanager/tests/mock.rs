#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The mock behind the `mock` feature stands in for `Arc<dyn FileManager>`.

use std::sync::Arc;

use agentd_fsmanager::{FileManager, FsError, MockFileManager};

#[test]
fn mock_file_manager_is_usable_as_a_trait_object() {
    let mut mock = MockFileManager::new();
    mock.expect_read()
        .withf(|path| path == "src/lib.rs")
        .returning(|_| Ok("fn main() {}".to_owned()));
    mock.expect_read().returning(|path| {
        Err(FsError::Escape {
            path: path.to_owned(),
        })
    });
    let fs: Arc<dyn FileManager> = Arc::new(mock);
    assert_eq!(fs.read("src/lib.rs").unwrap(), "fn main() {}");
    assert!(matches!(
        fs.read("../etc/passwd"),
        Err(FsError::Escape { .. })
    ));
}
