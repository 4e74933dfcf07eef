//! The private nginx: a config nginx accepts, a rejected one quoted, a
//! stop and start on the same port and cache, and nothing left on drop.

use lab::edge::{EdgeOptions, Nginx, can_spawn};

fn static_site(site: &lab::edge::Site) -> String {
    std::fs::create_dir_all(site.path("www")).expect("www");
    std::fs::write(site.path("www/hello.txt"), "hello\n").expect("file");
    format!(
        "server {{ listen 127.0.0.1:{}; access_log off; root {}; }}",
        site.port,
        site.path("www").display()
    )
}

#[tokio::test]
async fn serves_stops_starts_and_cleans_up() {
    if !can_spawn("serves_stops_starts_and_cleans_up") {
        return;
    }
    let mut nginx = Nginx::start_new(static_site, EdgeOptions::plain())
        .await
        .expect("nginx starts");
    let url = format!("{}/hello.txt", nginx.base_url());
    let body = reqwest::get(&url)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello\n");
    assert!(nginx.conf().contains("daemon off;"));

    nginx.stop().await.expect("stop");
    assert!(
        reqwest::get(&url).await.is_err(),
        "stopped nginx must refuse"
    );
    let port = nginx.port();
    nginx.start().await.expect("start again");
    assert_eq!(nginx.port(), port);
    let body = reqwest::get(&url)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello\n");

    let dir = nginx.dir().to_path_buf();
    drop(nginx);
    assert!(!dir.exists(), "the temp dir goes with the instance");
    assert!(reqwest::get(&url).await.is_err(), "a dropped nginx is gone");
}

#[tokio::test]
async fn a_rejected_config_quotes_nginx() {
    if !can_spawn("a_rejected_config_quotes_nginx") {
        return;
    }
    let e = Nginx::start_new(
        |site| {
            format!(
                "server {{ listen 127.0.0.1:{}; no_such_directive on; }}",
                site.port
            )
        },
        EdgeOptions::plain(),
    )
    .await
    .expect_err("nginx -t must reject it");
    let e = format!("{e:#}");
    assert!(e.contains("unknown directive \"no_such_directive\""), "{e}");
}

/// A port someone else listens on is an error that says so, not an nginx
/// that "started" because the other listener answered the readiness probe.
#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    if !can_spawn("a_port_in_use_is_a_clear_error") {
        return;
    }
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = other.local_addr().expect("its address").port();
    let opts = EdgeOptions {
        port: Some(port),
        ..EdgeOptions::plain()
    };
    let e = Nginx::start_new(static_site, opts)
        .await
        .expect_err("the port is taken: nginx must not report success");
    let e = format!("{e:#}");
    assert!(
        e.contains(&format!("127.0.0.1:{port} is in use")),
        "the error names the port: {e}"
    );
    assert!(e.contains("PORT="), "the error names the fix: {e}");
    drop(other);

    // A restart finds its port taken (no probe there: the port was its
    // own): nginx cannot bind, writes no pid file, and gives up; the other
    // listener's answer must not count as ready.
    let mut nginx = Nginx::start_new(static_site, EdgeOptions::plain())
        .await
        .expect("nginx starts");
    nginx.stop().await.expect("stop");
    let other = std::net::TcpListener::bind(("127.0.0.1", nginx.port())).expect("the freed port");
    let e = nginx
        .start()
        .await
        .expect_err("another listener is not this nginx");
    let e = format!("{e:#}");
    assert!(e.contains("exited"), "nginx's own failure: {e}");
    assert!(e.contains("Address already in use"), "nginx's log: {e}");
    drop(other);
}
