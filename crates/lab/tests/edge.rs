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
