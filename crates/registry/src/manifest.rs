//! Manifests, indexes and configs: fetched with a size cap, checked against their digest, size
//! and media type, indexes followed to this host's platform to a bounded depth.

use oci_client::client::current_platform_resolver;
use oci_client::manifest::{
    ImageIndexEntry, OciImageIndex, OciImageManifest, IMAGE_CONFIG_MEDIA_TYPE,
    IMAGE_DOCKER_CONFIG_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use sha2::{Digest as _, Sha256};

use crate::session::Session;
use crate::RegistryError;

/// The largest manifest, index or config podrun reads (containerd's limit too): real ones are
/// a few KiB, and a larger one could only be an attempt to exhaust memory.
pub const MAX_METADATA_SIZE: u64 = 4 << 20;

/// How many indexes may lead to the image manifest (an index of indexes of ...).
pub const MAX_INDEX_DEPTH: usize = 4;

const ACCEPTED: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// What a descriptor promised about the content it points to.
struct Expected<'a> {
    digest: &'a str,
    size: u64,
    media_type: &'a str,
}

/// The image manifest for this platform, its digest, and the top index's digest if any.
pub(crate) async fn resolve_manifest(
    session: &Session,
    reference: &oci_client::Reference,
) -> Result<(OciImageManifest, String, Option<String>), RegistryError> {
    let target = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_string();
    let mut fetched = fetch_manifest(session, &target, None).await?;
    if let Some(pinned) = reference.digest() {
        if fetched.digest != pinned {
            return Err(session.invalid(
                &format!("manifest {pinned}"),
                format!("its content hashes to {}", fetched.digest),
            ));
        }
    }
    let mut index_digest = None;
    for depth in 0.. {
        let index = match fetched.kind {
            Kind::Image(manifest) => return Ok((*manifest, fetched.digest, index_digest)),
            Kind::Index(index) => index,
        };
        if depth == MAX_INDEX_DEPTH {
            return Err(session.invalid(
                &format!("index {}", fetched.digest),
                format!("indexes nest more than {MAX_INDEX_DEPTH} deep"),
            ));
        }
        index_digest.get_or_insert_with(|| fetched.digest.clone());
        let entry = choose_entry(&index.manifests).ok_or_else(|| RegistryError::NotFound {
            image: session.image.clone(),
            registry: session.registry.clone(),
            detail: format!(
                "index {} has no manifest for {}/{}",
                fetched.digest,
                std::env::consts::OS,
                oci_client::config::Architecture::default()
            ),
        })?;
        let size = u64::try_from(entry.size).map_err(|_| {
            session.invalid(
                &format!("index {}", fetched.digest),
                format!("entry {} has a negative size", entry.digest),
            )
        })?;
        let expected = Expected {
            digest: &entry.digest,
            size,
            media_type: &entry.media_type,
        };
        fetched = fetch_manifest(session, &entry.digest, Some(expected)).await?;
    }
    unreachable!("the loop returns")
}

/// This platform's entry, else the first nested index (which may hold it).
fn choose_entry(entries: &[ImageIndexEntry]) -> Option<&ImageIndexEntry> {
    match current_platform_resolver(entries) {
        Some(digest) => entries.iter().find(|e| e.digest == digest),
        None => entries
            .iter()
            .find(|e| is_index_type(&e.media_type) && e.platform.is_none()),
    }
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_IMAGE_INDEX_MEDIA_TYPE || media_type == IMAGE_MANIFEST_LIST_MEDIA_TYPE
}

enum Kind {
    Image(Box<OciImageManifest>),
    Index(OciImageIndex),
}

struct Fetched {
    digest: String,
    kind: Kind,
}

async fn fetch_manifest(
    session: &Session,
    target: &str,
    expected: Option<Expected<'_>>,
) -> Result<Fetched, RegistryError> {
    let what = format!("manifest {target}");
    if let Some(e) = &expected {
        if e.size > MAX_METADATA_SIZE {
            return Err(session.invalid(
                &what,
                format!(
                    "its descriptor says {} bytes, over the limit of {MAX_METADATA_SIZE}",
                    e.size
                ),
            ));
        }
    }
    let limit = expected.as_ref().map_or(MAX_METADATA_SIZE, |e| e.size);
    let (body, content_type) = session
        .fetch_small(&format!("manifests/{target}"), ACCEPTED, limit, &what)
        .await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if let Some(e) = &expected {
        check_descriptor(session, &what, e, body.len() as u64, &digest)?;
    }
    let kind = parse_manifest(
        &body,
        content_type.as_deref(),
        expected.map(|e| e.media_type),
    )
    .map_err(|message| session.invalid(&what, message))?;
    Ok(Fetched { digest, kind })
}

fn check_descriptor(
    session: &Session,
    what: &str,
    expected: &Expected<'_>,
    size: u64,
    digest: &str,
) -> Result<(), RegistryError> {
    if size != expected.size {
        return Err(session.invalid(
            what,
            format!("it is {size} bytes, its descriptor says {}", expected.size),
        ));
    }
    if digest != expected.digest {
        return Err(session.invalid(what, format!("its content hashes to {digest}")));
    }
    Ok(())
}

/// Parses a manifest or index, refusing one whose declared media types (the descriptor's, the
/// Content-Type header, the body's `mediaType`) contradict each other or its structure.
fn parse_manifest(
    body: &[u8],
    content_type: Option<&str>,
    descriptor_type: Option<&str>,
) -> Result<Kind, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("it is not JSON: {e}"))?;
    if value["schemaVersion"] != 2 {
        return Err(format!(
            "schemaVersion is {}, podrun reads version 2",
            value["schemaVersion"]
        ));
    }
    let is_index = value.get("manifests").is_some();
    if is_index == value.get("layers").is_some() {
        return Err("it is neither an image manifest nor an index".into());
    }
    let declared = [
        ("its mediaType", value["mediaType"].as_str()),
        (
            "the Content-Type header",
            content_type.filter(|t| ACCEPTED.contains(t)),
        ),
        ("its descriptor", descriptor_type),
    ];
    for (source, media_type) in declared {
        if let Some(media_type) = media_type {
            if !ACCEPTED.contains(&media_type) || is_index_type(media_type) != is_index {
                let shape = if is_index {
                    "an index"
                } else {
                    "an image manifest"
                };
                return Err(format!(
                    "{source} says `{media_type}`, but the content is {shape}"
                ));
            }
        }
    }
    if is_index {
        let index = serde_json::from_value(value).map_err(|e| format!("invalid index: {e}"))?;
        Ok(Kind::Index(index))
    } else {
        let manifest: OciImageManifest =
            serde_json::from_value(value).map_err(|e| format!("invalid manifest: {e}"))?;
        check_image_manifest(&manifest)?;
        Ok(Kind::Image(Box::new(manifest)))
    }
}

/// The descriptors of an image manifest are usable: a container config, sizes not negative.
fn check_image_manifest(manifest: &OciImageManifest) -> Result<(), String> {
    let config = &manifest.config;
    if config.media_type != IMAGE_CONFIG_MEDIA_TYPE
        && config.media_type != IMAGE_DOCKER_CONFIG_MEDIA_TYPE
    {
        return Err(format!(
            "its config has media type `{}`: not a container image",
            config.media_type
        ));
    }
    if config.size < 0 || manifest.layers.iter().any(|l| l.size < 0) {
        return Err("a descriptor has a negative size".into());
    }
    Ok(())
}

/// The config blob, checked against its descriptor (size, digest) and capped in size.
pub(crate) async fn fetch_config(
    session: &Session,
    manifest: &OciImageManifest,
) -> Result<Vec<u8>, RegistryError> {
    let descriptor = &manifest.config;
    let what = format!("config {}", descriptor.digest);
    let size = u64::try_from(descriptor.size).unwrap_or(0);
    if size > MAX_METADATA_SIZE {
        return Err(session.invalid(
            &what,
            format!("its descriptor says {size} bytes, over the limit of {MAX_METADATA_SIZE}"),
        ));
    }
    let (body, _) = session
        .fetch_small(&format!("blobs/{}", descriptor.digest), &[], size, &what)
        .await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    let expected = Expected {
        digest: &descriptor.digest,
        size,
        media_type: &descriptor.media_type,
    };
    check_descriptor(session, &what, &expected, body.len() as u64, &digest)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},
        "layers":[]}"#;
    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
        "manifests":[]}"#;

    #[test]
    fn media_types_must_fit_the_content() {
        assert!(matches!(
            parse_manifest(IMAGE.as_bytes(), Some(OCI_IMAGE_MEDIA_TYPE), None),
            Ok(Kind::Image(_))
        ));
        assert!(matches!(
            parse_manifest(INDEX.as_bytes(), None, Some(OCI_IMAGE_INDEX_MEDIA_TYPE)),
            Ok(Kind::Index(_))
        ));
        // An index served as an image manifest, or the other way round.
        let err = parse_manifest(INDEX.as_bytes(), Some(IMAGE_MANIFEST_MEDIA_TYPE), None)
            .err()
            .unwrap();
        assert!(
            err.contains("Content-Type") && err.contains("index"),
            "{err}"
        );
        let err = parse_manifest(IMAGE.as_bytes(), None, Some(OCI_IMAGE_INDEX_MEDIA_TYPE))
            .err()
            .unwrap();
        assert!(err.contains("descriptor"), "{err}");
        let relabelled = IMAGE.replace(OCI_IMAGE_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE);
        assert!(parse_manifest(relabelled.as_bytes(), None, None).is_err());
        // A generic Content-Type (some registries send application/json) is not a claim.
        assert!(parse_manifest(IMAGE.as_bytes(), Some("application/json"), None).is_ok());
    }

    #[test]
    fn artifacts_and_odd_documents_are_refused() {
        let artifact = IMAGE.replace(
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.example.thing",
        );
        let err = parse_manifest(artifact.as_bytes(), None, None)
            .err()
            .unwrap();
        assert!(err.contains("not a container image"), "{err}");
        assert!(parse_manifest(b"[]", None, None).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None, None).is_err());
        let both = r#"{"schemaVersion":2,"manifests":[],"layers":[]}"#;
        assert!(parse_manifest(both.as_bytes(), None, None).is_err());
    }
}
