//! Step 3 of discovery: a testcontainers container.
//!
//! Kept thin on purpose. [`spec`] says what the harness asks Docker for (the
//! image, its pinned tag, env and port), as plain data that a unit test pins
//! without a daemon. `start` (behind the `docker` feature) hands that to
//! testcontainers and waits until the server answers.
//!
//! The tags match `docker-compose.yml`, so a container and `just services-up`
//! run the same server versions.

use crate::kind::Kind;

/// What the harness asks Docker for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    pub image: &'static str,
    pub tag: &'static str,
    pub env: Vec<(&'static str, &'static str)>,
    /// The port inside the container.
    pub port: u16,
    /// How to build the URL once the port is mapped: `{port}` is replaced.
    pub url_template: &'static str,
}

pub fn spec(kind: Kind) -> ContainerSpec {
    match kind {
        Kind::Postgres => ContainerSpec {
            image: "postgres",
            tag: "18.1",
            // Trust auth and a database named `test`, as on the workshop's machines.
            env: vec![
                ("POSTGRES_HOST_AUTH_METHOD", "trust"),
                ("POSTGRES_DB", "test"),
            ],
            port: 5432,
            url_template: "postgres://postgres@127.0.0.1:{port}/test",
        },
        Kind::Redis => ContainerSpec {
            image: "redis",
            tag: "8.2",
            env: vec![],
            port: 6379,
            url_template: "redis://127.0.0.1:{port}",
        },
        Kind::MySql => ContainerSpec {
            image: "mariadb",
            tag: "11.8",
            env: vec![
                ("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"),
                ("MARIADB_DATABASE", "test"),
            ],
            port: 3306,
            url_template: "mysql://root@127.0.0.1:{port}/test",
        },
    }
}

/// A running container; dropping it removes the container.
#[cfg(feature = "docker")]
pub(crate) struct Container {
    pub url: String,
    _handle: testcontainers::ContainerAsync<testcontainers::GenericImage>,
}

#[cfg(feature = "docker")]
pub(crate) async fn start(kind: Kind) -> anyhow::Result<Container> {
    use anyhow::Context;
    use testcontainers::core::IntoContainerPort;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerRequest, GenericImage, ImageExt};

    let s = spec(kind);
    let mut request: ContainerRequest<GenericImage> = GenericImage::new(s.image, s.tag)
        .with_exposed_port(s.port.tcp())
        .into();
    for (k, v) in &s.env {
        request = request.with_env_var(*k, *v);
    }
    tracing::info!(
        "starting a {kind} container ({}:{}); the first pull can take a minute",
        s.image,
        s.tag
    );
    let handle = request
        .start()
        .await
        .context("Failed to start the container")?;
    let port = handle.get_host_port_ipv4(s.port.tcp()).await?;
    let url = s.url_template.replace("{port}", &port.to_string());
    // The official images restart the server once after initialising it, so
    // the port can answer before the real server does: poll until it does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Err(e) = crate::kind::ping(kind, &url).await {
        if std::time::Instant::now() > deadline {
            return Err(e.context("the container never answered"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(Container {
        url,
        _handle: handle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_pinned_and_match_the_local_defaults() {
        for kind in Kind::ALL {
            let s = spec(kind);
            assert!(
                s.tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{kind}: pin a version, not {:?}",
                s.tag
            );
            assert_eq!(s.port, kind.default_port());
            // The container's URL differs from the local default only in its port.
            let local = kind
                .default_url()
                .replace(&kind.default_port().to_string(), "{port}");
            assert_eq!(s.url_template, local, "{kind}");
        }
        assert!(
            spec(Kind::Postgres)
                .env
                .contains(&("POSTGRES_HOST_AUTH_METHOD", "trust"))
        );
        assert!(
            spec(Kind::MySql)
                .env
                .contains(&("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"))
        );
    }

    #[test]
    fn compose_runs_the_same_versions() {
        let compose = include_str!("../../../docker-compose.yml");
        for kind in Kind::ALL {
            let s = spec(kind);
            let line = format!("image: {}:{}", s.image, s.tag);
            assert!(
                compose.contains(&line),
                "docker-compose.yml should pin `{line}` like the harness does"
            );
        }
    }
}
