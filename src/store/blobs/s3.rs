//! [`Blobs`] on S3 (or an S3-compatible server) through object_store: one
//! whole-object PUT per file, `If-None-Match: *` / `If-Match: <etag>` for the
//! conditions, suffix-range GETs for footers, copy + delete for a move.
//!
//! object_store is async and the store is not: [`S3Blobs`] owns a small tokio
//! runtime (two worker threads of its own) and each call sends its request
//! there and waits on a std channel for the answer. That works from plain
//! threads and from inside another runtime's worker thread alike (where
//! `Handle::block_on` would panic).
//!
//! Settings ([`S3Config`]) come from the environment, finpipe's names first:
//!
//! | setting | variables, first set wins | default |
//! |---|---|---|
//! | endpoint | `FINPIPE_S3_ENDPOINT`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` | AWS itself (virtual-hosted requests); an endpoint is asked path-style, `http://` allowed |
//! | region | `FINPIPE_S3_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION` | `us-east-1` |
//! | access key | `FINPIPE_S3_ACCESS_KEY_ID`, `AWS_ACCESS_KEY_ID` | none: the instance's credentials |
//! | secret key | `FINPIPE_S3_SECRET_ACCESS_KEY`, `AWS_SECRET_ACCESS_KEY` | none |
//! | session token | `FINPIPE_S3_SESSION_TOKEN`, `AWS_SESSION_TOKEN` | none |
//!
//! The keys are [`Secret`]s: never in `Debug`, errors or output (texts from
//! the client are scrubbed of them, as for flat files).

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};

use super::{Blob, BlobError, Blobs, Condition, Entry, PreparedFile, Tail, Version};
use crate::flatfiles::{ClientSpec, ErrorContext, S3Failure, build_client, http_allowed};
use crate::fsutil::TMP_MARKER;
use crate::secret::Secret;

/// Whole-request timeout, body included (object_store's default is 30 s; a
/// year of 1-minute bars is tens of MB on a slow link).
pub const S3_TIMEOUT: Duration = Duration::from_secs(300);

/// The region asked for when none is set.
const DEFAULT_REGION: &str = "us-east-1";

/// Worker threads of the client's own runtime.
const WORKERS: usize = 2;

/// How to reach the object store of an `s3://` library. `Debug` masks the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host[:port]` of an S3-compatible server; `None`: AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub timeout: Duration,
}

impl S3Config {
    /// The settings the process environment gives (see the module table).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `var` gives for the variable names in the module table;
    /// empty values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|name| var(name))
                .map(|v| v.trim().to_owned())
                .find(|v| !v.is_empty())
        };
        Self {
            endpoint: first(&[
                "FINPIPE_S3_ENDPOINT",
                "AWS_ENDPOINT_URL_S3",
                "AWS_ENDPOINT_URL",
            ]),
            region: first(&["FINPIPE_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"])
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            access_key: first(&["FINPIPE_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]).map(Secret::new),
            secret_key: first(&["FINPIPE_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"])
                .map(Secret::new),
            session_token: first(&["FINPIPE_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"])
                .map(Secret::new),
            timeout: S3_TIMEOUT,
        }
    }
}

/// An `s3://bucket/prefix` library location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Root {
    pub bucket: String,
    /// Object-key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Root {
    /// Parses `s3://bucket[/prefix…]`; `None` when `root` is not such a URL.
    pub fn parse(root: &Path) -> Option<Result<Self, BlobError>> {
        let text = root.to_str()?.strip_prefix("s3://")?;
        let invalid = |detail: String| BlobError::Config {
            root: root.to_path_buf(),
            detail,
        };
        let text = text.trim_end_matches('/');
        let (bucket, prefix) = text.split_once('/').unwrap_or((text, ""));
        if bucket.is_empty() {
            return Some(Err(invalid("no bucket: write s3://bucket/prefix".into())));
        }
        if let Err(e) = Key::parse(prefix) {
            return Some(Err(invalid(format!(
                "the prefix is not an object key: {e}"
            ))));
        }
        Some(Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

/// The library's files in an S3 bucket under a prefix.
pub struct S3Blobs {
    root: PathBuf,
    location: S3Root,
    store: Arc<dyn ObjectStore>,
    context: Arc<ErrorContext>,
    scratch: PathBuf,
    /// Taken (and shut down without waiting) on drop: dropping a runtime
    /// the blocking way panics inside another runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Blobs")
            .field("root", &self.root)
            .field("endpoint", &self.context.endpoint())
            .field("scratch", &self.scratch)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Blobs {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl S3Blobs {
    /// A client for the library at `root` (`s3://bucket/prefix`), with
    /// prepared writes in `scratch` (a local directory, created when first
    /// used). No request is sent yet.
    pub fn new(root: &Path, config: &S3Config, scratch: &Path) -> Result<Self, BlobError> {
        let invalid = |detail: String| BlobError::Config {
            root: root.to_path_buf(),
            detail,
        };
        let location = S3Root::parse(root)
            .ok_or_else(|| invalid("not an s3://bucket/prefix URL".into()))??;
        if let Some(endpoint) = &config.endpoint
            && http_allowed(endpoint.trim()).is_none()
        {
            return Err(invalid(format!(
                "the endpoint {endpoint:?} is not an http:// or https:// URL \
                 (FINPIPE_S3_ENDPOINT, AWS_ENDPOINT_URL)"
            )));
        }
        if config.access_key.is_some() != config.secret_key.is_some() {
            return Err(invalid(
                "only one of the two S3 keys is set: set both FINPIPE_S3_ACCESS_KEY_ID and \
                 FINPIPE_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), \
                 or neither to use the instance's credentials"
                    .into(),
            ));
        }
        let (store, context) = build_client(&ClientSpec {
            endpoint: config.endpoint.as_deref(),
            bucket: &location.bucket,
            region: &config.region,
            access_key: config.access_key.as_ref(),
            secret_key: config.secret_key.as_ref(),
            session_token: config.session_token.as_ref(),
            timeout: config.timeout,
        })
        .map_err(invalid)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("finpipe-s3")
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("cannot start the S3 client's threads: {e}")))?;
        Ok(Self {
            root: PathBuf::from(root.to_str().unwrap_or_default().trim_end_matches('/')),
            location,
            store,
            context: Arc::new(context),
            scratch: scratch.to_path_buf(),
            runtime: Some(runtime),
        })
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &S3Root {
        &self.location
    }

    /// The object key of `path` (below the root).
    fn key(&self, path: &Path) -> Result<Key, BlobError> {
        let outside = || BlobError::Config {
            root: self.root.clone(),
            detail: format!("{} is not below the library", path.display()),
        };
        let relative = path.strip_prefix(&self.root).map_err(|_| outside())?;
        let mut key = self.location.prefix.clone();
        for component in relative.components() {
            let Component::Normal(part) = component else {
                return Err(outside());
            };
            let part = part.to_str().ok_or_else(outside)?;
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
        }
        Key::parse(&key).map_err(|e| BlobError::Config {
            root: self.root.clone(),
            detail: format!("{} is not an object key: {e}", path.display()),
        })
    }

    /// Runs `request` on the client's runtime and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        action: &'static str,
        path: &Path,
        request: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, BlobError> {
        let stopped = || BlobError::Remote {
            action,
            path: path.to_path_buf(),
            detail: "the S3 client's runtime has stopped".into(),
            transient: false,
        };
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            // The receiver waits for this send; it is gone only if the
            // caller's thread died.
            let _ = tx.send(request.await);
        });
        rx.recv()
            .map_err(|_| stopped())?
            .map_err(|e| self.error(action, path, &e))
    }

    /// The [`BlobError`] for an object_store error on `path`.
    fn error(&self, action: &'static str, path: &Path, err: &object_store::Error) -> BlobError {
        if matches!(
            err,
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }
        ) {
            return BlobError::Conflict {
                path: path.to_path_buf(),
            };
        }
        match self.context.classify(err) {
            S3Failure::Denied { reason } => BlobError::Denied {
                path: path.to_path_buf(),
                endpoint: self.context.endpoint().to_owned(),
                reason,
            },
            S3Failure::NotFound => BlobError::Remote {
                action,
                path: path.to_path_buf(),
                detail: "no such object".into(),
                transient: false,
            },
            S3Failure::Other { detail, transient } => BlobError::Remote {
                action,
                path: path.to_path_buf(),
                detail,
                transient,
            },
        }
    }

    /// `request`'s answer, with "not found" as `None`.
    fn run_found<T: Send + 'static>(
        &self,
        action: &'static str,
        path: &Path,
        request: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<Option<T>, BlobError> {
        let found = self.run(action, path, async move {
            match request.await {
                Ok(value) => Ok(Some(value)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(found)
    }

    fn put(&self, path: &Path, bytes: Bytes, condition: Condition) -> Result<Version, BlobError> {
        let key = self.key(path)?;
        let mode = match condition {
            Condition::Any => PutMode::Overwrite,
            Condition::Absent => PutMode::Create,
            Condition::Matches(version) => PutMode::Update(UpdateVersion {
                e_tag: Some(version.0),
                version: None,
            }),
        };
        let store = Arc::clone(&self.store);
        let result = self.run("write", path, async move {
            store
                .put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode))
                .await
        })?;
        self.version(path, result.e_tag)
    }

    fn version(&self, path: &Path, e_tag: Option<String>) -> Result<Version, BlobError> {
        e_tag.map(Version).ok_or_else(|| BlobError::Remote {
            action: "read the version of",
            path: path.to_path_buf(),
            detail: "the server sent no ETag, so writes cannot be made conditional".into(),
            transient: false,
        })
    }
}

impl Blobs for S3Blobs {
    fn root(&self) -> &Path {
        &self.root
    }

    fn is_local(&self) -> bool {
        false
    }

    fn scratch(&self) -> Option<&Path> {
        Some(&self.scratch)
    }

    fn read(&self, path: &Path) -> Result<Option<Blob>, BlobError> {
        let (key, store) = (self.key(path)?, Arc::clone(&self.store));
        let found = self.run_found("read", path, async move {
            let got = store.get_opts(&key, GetOptions::default()).await?;
            let e_tag = got.meta.e_tag.clone();
            Ok((got.bytes().await?, e_tag))
        })?;
        let Some((bytes, e_tag)) = found else {
            return Ok(None);
        };
        Ok(Some(Blob {
            bytes,
            version: self.version(path, e_tag)?,
        }))
    }

    fn read_tail(&self, path: &Path, len: u64) -> Result<Option<Tail>, BlobError> {
        let (key, store) = (self.key(path)?, Arc::clone(&self.store));
        let found = self.run_found("read", path, async move {
            let head = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            if len == 0 {
                let meta = store.get_opts(&key, head).await?.meta;
                return Ok((meta.size, Bytes::new()));
            }
            let options = GetOptions {
                range: Some(GetRange::Suffix(len)),
                ..GetOptions::default()
            };
            match store.get_opts(&key, options).await {
                Ok(got) => {
                    let size = got.meta.size;
                    Ok((size, got.bytes().await?))
                }
                // An empty object has no suffix to give (416).
                Err(e) if e.to_string().contains("416") => {
                    let meta = store.get_opts(&key, head).await?.meta;
                    Ok((meta.size, Bytes::new()))
                }
                Err(e) => Err(e),
            }
        })?;
        Ok(found.map(|(size, bytes)| Tail { size, bytes }))
    }

    fn write(&self, path: &Path, bytes: Bytes, condition: Condition) -> Result<Version, BlobError> {
        self.put(path, bytes, condition)
    }

    fn list(&self, dir: &Path) -> Result<Vec<Entry>, BlobError> {
        let (key, store) = (self.key(dir)?, Arc::clone(&self.store));
        let prefix = (!key.as_ref().is_empty()).then_some(key);
        let listed = self.run("list", dir, async move {
            store.list_with_delimiter(prefix.as_ref()).await
        })?;
        let name = |key: &Key| key.filename().map(str::to_owned);
        let mut out: Vec<Entry> = listed
            .common_prefixes
            .iter()
            .filter_map(name)
            .map(|name| Entry { name, is_dir: true })
            .collect();
        out.extend(
            listed
                .objects
                .iter()
                .filter_map(|meta| name(&meta.location))
                .map(|name| Entry {
                    name,
                    is_dir: false,
                }),
        );
        Ok(out)
    }

    fn remove(&self, path: &Path) -> Result<(), BlobError> {
        let (key, store) = (self.key(path)?, Arc::clone(&self.store));
        // S3 answers a DELETE of a missing key with success; others 404.
        self.run_found("remove", path, async move { store.delete(&key).await })?;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), BlobError> {
        let (source, target) = (self.key(from)?, self.key(to)?);
        let store = Arc::clone(&self.store);
        self.run("move", from, async move {
            store.copy(&source, &target).await?;
            store.delete(&source).await
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, BlobError> {
        let (key, store) = (self.key(path)?, Arc::clone(&self.store));
        let found = self.run_found("read", path, async move { store.head(&key).await })?;
        Ok(found.is_some())
    }

    fn prepare(&self, path: &Path, bytes: &[u8]) -> Result<PreparedFile, BlobError> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let temp = self
            .scratch
            .join(format!("{name}{TMP_MARKER}{:016x}", fastrand::u64(..)));
        let written = crate::fsutil::create_dirs(&self.scratch, false)
            .and_then(|()| std::fs::File::create(&temp))
            .and_then(|mut file| file.write_all(bytes));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(BlobError::local(
                "write a prepared file in",
                &self.scratch,
                e,
            ));
        }
        Ok(PreparedFile {
            temp,
            version: None,
        })
    }

    fn commit(
        &self,
        prepared: &PreparedFile,
        path: &Path,
        condition: Condition,
    ) -> Result<Version, BlobError> {
        let bytes = self.read_prepared(prepared)?;
        let version = self.put(path, bytes, condition)?;
        // Best effort: the scratch directory is the system's temporary one.
        let _ = std::fs::remove_file(&prepared.temp);
        Ok(version)
    }

    fn discard(&self, prepared: PreparedFile) {
        let _ = std::fs::remove_file(&prepared.temp);
    }

    fn read_prepared(&self, prepared: &PreparedFile) -> Result<Bytes, BlobError> {
        std::fs::read(&prepared.temp)
            .map(Bytes::from)
            .map_err(|e| BlobError::local("read", &prepared.temp, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_finpipe_names_first_and_never_show_the_keys() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://aws-style:9000"),
            ("FINPIPE_S3_ENDPOINT", "http://127.0.0.1:5055"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_REGION", " "),
            ("AWS_ACCESS_KEY_ID", "AKIA-visible-id"),
            ("FINPIPE_S3_SECRET_ACCESS_KEY", "s3cr3t-never-shown"),
            ("AWS_SECRET_ACCESS_KEY", "other-secret"),
        ];
        let config = S3Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:5055"));
        assert_eq!(config.region, "eu-west-1", "an empty AWS_REGION is unset");
        assert_eq!(
            config.secret_key.as_ref().map(Secret::expose),
            Some("s3cr3t-never-shown")
        );
        assert_eq!(config.session_token, None);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKIA"),
            "{shown}"
        );
        let defaults = S3Config::from_lookup(|_| None);
        assert_eq!(
            (
                defaults.endpoint,
                defaults.region.as_str(),
                defaults.access_key
            ),
            (None, "us-east-1", None)
        );
    }

    #[test]
    fn roots_name_a_bucket_and_a_prefix() {
        let parse = |s: &str| S3Root::parse(Path::new(s));
        let root = parse("s3://bucket/some/prefix/").unwrap().unwrap();
        assert_eq!(
            (root.bucket.as_str(), root.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        let bare = parse("s3://bucket").unwrap().unwrap();
        assert_eq!(bare.prefix, "");
        assert!(parse("s3:///prefix").unwrap().is_err());
        assert!(parse("/data").is_none());
        // Paths below the root strip to their key, as the store builds them.
        let path = Path::new("s3://bucket/some/prefix").join("AAPL").join("1m");
        assert_eq!(
            path.strip_prefix("s3://bucket/some/prefix").unwrap(),
            Path::new("AAPL/1m")
        );
    }

    #[test]
    fn bad_settings_are_refused_before_any_request() {
        let scratch = std::env::temp_dir();
        let mut config = S3Config::from_lookup(|_| None);
        config.endpoint = Some("ftp://host".into());
        let err = S3Blobs::new(Path::new("s3://b/p"), &config, &scratch).unwrap_err();
        assert!(err.to_string().contains("FINPIPE_S3_ENDPOINT"), "{err}");
        config.endpoint = None;
        config.access_key = Some(Secret::new("id-only"));
        let err = S3Blobs::new(Path::new("s3://b/p"), &config, &scratch).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        assert!(!err.to_string().contains("id-only"), "{err}");
        let err = S3Blobs::new(Path::new("/local"), &config, &scratch).unwrap_err();
        assert!(matches!(err, BlobError::Config { .. }), "{err}");
    }

    #[test]
    fn keys_are_the_prefix_and_the_relative_path() {
        let config = S3Config::from_lookup(|_| None);
        let blobs =
            S3Blobs::new(Path::new("s3://b/lib/v1/"), &config, &std::env::temp_dir()).unwrap();
        let root = blobs.root().to_path_buf();
        assert_eq!(root, Path::new("s3://b/lib/v1"));
        let key = blobs.key(&root.join("X~BTCUSD").join("1d").join("2024.parquet"));
        assert_eq!(key.unwrap().as_ref(), "lib/v1/X~BTCUSD/1d/2024.parquet");
        assert_eq!(blobs.key(&root).unwrap().as_ref(), "lib/v1");
        assert!(blobs.key(Path::new("s3://other/x")).is_err());
        assert!(blobs.key(&root.join("..").join("x")).is_err());
    }
}
