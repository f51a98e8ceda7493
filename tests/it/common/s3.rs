//! A real S3 server for tests, in process: s3s + s3s-fs 0.14.1 serving a
//! directory on 127.0.0.1 with SigV4 checked for one key pair, set up as the
//! s3s-fs binary's `main.rs` does. Objects are the files at
//! `<root>/<bucket>/<key>`, so a test seeds one by copying a file there.
//! The server stops when the [`S3Server`] is dropped.

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The bucket tests use, as on Polygon's server.
pub const BUCKET: &str = "flatfiles";
/// The key pair the server accepts.
pub const ACCESS_KEY: &str = "finpipe-test-access";
pub const SECRET_KEY: &str = "finpipe-test-secret-5up3r-s3cr3t";

/// A running server. Dropping it stops the server and its connections.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// The served directory.
    pub root: PathBuf,
    accept: JoinHandle<()>,
}

/// Serves `root` (creating `<root>/flatfiles`, the bucket) on a free loopback port.
pub async fn start_s3(root: &Path) -> S3Server {
    std::fs::create_dir_all(root.join(BUCKET)).expect("create the bucket directory");
    let fs = FileSystem::new(root).expect("s3s-fs serves the root directory");
    let service = {
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("the bound address");
    let accept = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        // Owned by this task: aborting it drops the set, which aborts every connection.
        let mut connections = JoinSet::new();
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                // Out of descriptors or similar: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            connections.spawn(async move {
                let _ = connection.await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    S3Server {
        endpoint: format!("http://{address}"),
        bucket: BUCKET.to_owned(),
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SECRET_KEY.to_owned(),
        root: root.to_path_buf(),
        accept,
    }
}

impl S3Server {
    /// The file that holds the object `key`.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(&self.bucket).join(key)
    }

    /// Stores `bytes` as the object `key` (writes the file; no request).
    pub fn seed(&self, key: &str, bytes: &[u8]) {
        let path = self.object_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the object's folders");
        }
        std::fs::write(&path, bytes).expect("write the object");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The moto server of the library-on-S3 tests (`FINPIPE_TEST_S3`, e.g.
/// `http://127.0.0.1:5055`; `.ci/run` starts one). Missing: under `CI=true`
/// the test fails saying how to start one; elsewhere it says so and the
/// test returns (`None`). (The library's own tests have the same gate in
/// `src/store/blobs/conformance.rs`.)
pub fn moto_endpoint() -> Option<String> {
    if let Some(url) = std::env::var("FINPIPE_TEST_S3")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Some(url.trim().trim_end_matches('/').to_owned());
    }
    let how = "FINPIPE_TEST_S3 is not set: start an S3 server that honours If-Match, e.g. \
               `python3 -m venv /tmp/moto && /tmp/moto/bin/pip install 'moto[server]' && \
               /tmp/moto/bin/moto_server -H 127.0.0.1 -p 5055 &`, then \
               `export FINPIPE_TEST_S3=http://127.0.0.1:5055` (.ci/run does this)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{how}");
    eprintln!("skipped: {how}");
    None
}

/// A fresh bucket on the moto server (which takes unsigned requests).
pub fn create_bucket(endpoint: &str) -> String {
    use std::io::{Read, Write};
    let bucket = format!("fp-{:016x}", fastrand::u64(..));
    let host = endpoint.strip_prefix("http://").expect("plain http");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to moto");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket: {answer}"
    );
    bucket
}
