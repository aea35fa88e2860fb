//! Shared files: a file uploaded through one front end is stored in the broker (the room's
//! files stream) and read back by any front end of that broker; members only; size limit;
//! served so that no file can run script in the chat's origin.

mod common;

use hyper::{Body, Client, Method, Request};
use serde_json::Value;

use common::{Chat, amqp_url, chat, chat_on, chat_with};

/// A 1x1 PNG (red pixel).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";

struct Got {
    status: u16,
    headers: hyper::HeaderMap,
    bytes: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

async fn send(req: Request<Body>) -> Got {
    let resp = Client::new().request(req).await.expect("http request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = hyper::body::to_bytes(resp.into_body()).await.map(|b| b.to_vec()).unwrap_or_default();
    Got { status, headers, bytes }
}

/// Upload `bytes` as `name` of type `ty` to `room` (raw body, Content-Length set).
async fn upload(c: &Chat, token: &str, room: &str, name: &str, ty: &str, bytes: Vec<u8>) -> Got {
    let name: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/api/rooms/{room}/files?name={name}", c.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", ty)
        .body(Body::from(bytes))
        .unwrap();
    send(req).await
}

async fn download(c: &Chat, token: &str, room: &str, id: &str) -> Got {
    let req = Request::builder()
        .uri(format!("{}/api/files/{room}/{id}", c.base))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(req).await
}

#[tokio::test]
async fn an_image_goes_round_trip_through_the_broker_to_another_front_end() {
    let c = chat().await;
    let (_alice, alice) = c.user("alice").await;
    let (_bob, bob) = c.user("bob").await;
    let room = c.shared_room(&alice, &bob).await;

    let up = upload(&c, &alice, &room, "red dot.png", "image/png", PNG.to_vec()).await;
    assert_eq!(up.status, 201, "upload: {}", String::from_utf8_lossy(&up.bytes));
    let msg = up.json();
    let file = &msg["file"];
    assert_eq!(file["name"], "red dot.png");
    assert_eq!(file["type"], "image/png");
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["id"], msg["id"]);
    let id = msg["id"].as_str().unwrap().to_owned();

    // bob sees it in the history, and downloads it
    let history = c.req("GET", &format!("/api/rooms/{room}/messages"), Some(&bob), None).await;
    assert_eq!(history.status, 200);
    assert_eq!(history.body["messages"][0]["file"]["id"], id.as_str());
    let got = download(&c, &bob, &room, &id).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, PNG);
    assert_eq!(got.header("content-type"), "image/png");
    assert!(got.header("content-disposition").starts_with("inline;"), "{:?}", got.headers);
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert!(got.header("content-security-policy").contains("sandbox"), "{:?}", got.headers);

    // a second front end of the same broker has no local copy: it reads the stream
    let other = chat_on(&amqp_url(), |_| {}).await;
    let got = download(&other, &bob, &room, &id).await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.bytes));
    assert_eq!(got.bytes, PNG);

    // a larger file of any type: byte for byte, as an attachment
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let up = upload(&c, &bob, &room, "data.bin", "application/octet-stream", data.clone()).await;
    assert_eq!(up.status, 201);
    let big = up.json()["id"].as_str().unwrap().to_owned();
    // (the other front end learns of the message from the room's stream, a moment later)
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let h = other.req("GET", &format!("/api/rooms/{room}/messages"), Some(&alice), None).await;
        if h.body["messages"][0]["id"] == big.as_str() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let got = download(&other, &alice, &room, &big).await;
    assert_eq!(got.status, 200);
    assert!(got.bytes == data, "3 MB file differs after the round trip");
    assert!(got.header("content-disposition").starts_with("attachment;"));

    // deleted: gone for everyone
    let del = c.req("DELETE", &format!("/api/rooms/{room}/messages/{id}"), Some(&alice), None).await;
    assert_eq!(del.status, 204);
    let got = download(&c, &bob, &room, &id).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["error"], "not_found");
}

#[tokio::test]
async fn svg_and_disguised_files_are_never_inline() {
    let c = chat().await;
    let (_alice, alice) = c.user("alice").await;
    let room = c.room(&alice, false).await["id"].as_str().unwrap().to_owned();
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec();
    let up = upload(&c, &alice, &room, "x.svg", "image/svg+xml", svg.clone()).await;
    assert_eq!(up.status, 201);
    let got = download(&c, &alice, &room, up.json()["id"].as_str().unwrap()).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, svg);
    assert!(got.header("content-disposition").starts_with("attachment;"), "{:?}", got.headers);
    assert!(got.header("content-security-policy").contains("default-src 'none'"));

    // HTML that says it is a PNG: served as what it says, but as an attachment
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let up = upload(&c, &alice, &room, "../../evil.png", "image/png", html).await;
    assert_eq!(up.status, 201);
    assert_eq!(up.json()["file"]["name"], "evil.png");
    let got = download(&c, &alice, &room, up.json()["id"].as_str().unwrap()).await;
    assert!(got.header("content-disposition").starts_with("attachment;"), "{:?}", got.headers);
    assert_eq!(got.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn too_large_files_are_refused_with_413() {
    let c = chat_with(|cfg| cfg.max_upload_bytes = 64 * 1024).await;
    let (_alice, alice) = c.user("alice").await;
    let room = c.room(&alice, true).await["id"].as_str().unwrap().to_owned();
    let cfg = c.req("GET", "/api/config", None, None).await;
    assert_eq!(cfg.body["max_upload_bytes"], 64 * 1024);

    let up = upload(&c, &alice, &room, "big.bin", "application/octet-stream", vec![7; 64 * 1024 + 1]).await;
    assert_eq!(up.status, 413);
    assert_eq!(up.json()["error"], "too_large");
    assert!(up.json()["message"].as_str().unwrap().contains("64.0 KB"), "{}", up.json());

    // no Content-Length (chunked): refused once the body passes the limit
    let chunks = futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![1u8; 16 * 1024])));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/api/rooms/{room}/files?name=chunked.bin", c.base))
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::wrap_stream(chunks))
        .unwrap();
    let got = send(req).await;
    assert_eq!(got.status, 413);
    assert_eq!(got.json()["error"], "too_large");

    // exactly the limit is fine; nothing at all is not a file
    let up = upload(&c, &alice, &room, "fits.bin", "application/octet-stream", vec![7; 64 * 1024]).await;
    assert_eq!(up.status, 201);
    let up = upload(&c, &alice, &room, "empty.txt", "text/plain", Vec::new()).await;
    assert_eq!(up.status, 422);
    assert_eq!(up.json()["error"], "unprocessable");
}

#[tokio::test]
async fn only_members_share_and_read_files() {
    let c = chat().await;
    let (_alice, alice) = c.user("alice").await;
    let (_carol, carol) = c.user("carol").await;
    let public = c.room(&alice, true).await["id"].as_str().unwrap().to_owned();
    let private = c.room(&alice, false).await["id"].as_str().unwrap().to_owned();
    let up = upload(&c, &alice, &public, "a.txt", "text/plain", b"hello".to_vec()).await;
    assert_eq!(up.status, 201);
    let id = up.json()["id"].as_str().unwrap().to_owned();

    // carol is no member of the public room: 403, JSON
    let up = upload(&c, &carol, &public, "b.txt", "text/plain", b"hi".to_vec()).await;
    assert_eq!(up.status, 403);
    assert_eq!(up.json()["error"], "forbidden");
    let got = download(&c, &carol, &public, &id).await;
    assert_eq!(got.status, 403);
    assert_eq!(got.json()["error"], "forbidden");
    // the private room is not even there for her
    assert_eq!(upload(&c, &carol, &private, "b.txt", "text/plain", b"hi".to_vec()).await.status, 404);
    // no token at all
    let req = Request::builder().uri(format!("{}/api/files/{public}/{id}", c.base)).body(Body::empty()).unwrap();
    let got = send(req).await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["error"], "unauthorized");
    // a file id of another room is no file of this one
    let up = upload(&c, &alice, &private, "p.txt", "text/plain", b"secret".to_vec()).await;
    let secret = up.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(download(&c, &alice, &public, &secret).await.status, 404);
    // a name is required
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/api/rooms/{public}/files", c.base))
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::from("x"))
        .unwrap();
    let got = send(req).await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"], "bad_request");
}

#[tokio::test]
async fn deleting_a_room_deletes_its_files_stream() {
    let c = chat().await;
    let (_alice, alice) = c.user("alice").await;
    let (_bob, bob) = c.user("bob").await;
    let room = c.shared_room(&alice, &bob).await;
    let up = upload(&c, &alice, &room, "dot.png", "image/png", PNG.to_vec()).await;
    assert_eq!(up.status, 201, "upload: {}", String::from_utf8_lossy(&up.bytes));
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let passive = || async {
        let ch = conn.create_channel().await.unwrap();
        let opts = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        let args = lapin::types::FieldTable::default();
        ch.queue_declare(format!("chat.files.{room}").as_str().into(), opts, args).await
    };
    assert!(passive().await.is_ok(), "the files stream is there after an upload");
    assert_eq!(c.req("DELETE", &format!("/api/rooms/{room}"), Some(&alice), None).await.status, 204);
    let err = passive().await;
    assert!(format!("{err:?}").contains("NOT_FOUND") || format!("{err:?}").contains("404"), "{err:?}");
    let _ = conn.close(200, "bye".into()).await;
}
