//! Moderation and administration over REST: room owners, administrators (`--admin`),
//! disabled accounts, password changes, sign-up modes (see common::amqp_url for the broker).

mod common;

use common::{chat, chat_with, name};
use serde_json::{Value, json};
use warren_chat::Signup;

const PASSWORD: &str = "correct horse";

async fn register(c: &common::Chat, user: &str) -> String {
    let r = c.req("POST", "/api/register", None, Some(json!({"username": user, "password": PASSWORD}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["token"].as_str().unwrap_or_default().to_owned()
}

fn members(v: &Value) -> Vec<String> {
    v["members"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn owners_and_administrators_moderate() {
    let admin = name("root");
    let admins = vec![admin.clone()];
    let c = chat_with(move |cfg| cfg.admins = admins).await;
    let (owner, member, stranger) = (name("owner"), name("member"), name("stranger"));
    let (to, tm, ts, ta) = (
        register(&c, &owner).await,
        register(&c, &member).await,
        register(&c, &stranger).await,
        register(&c, &admin).await,
    );

    let r = c.req("POST", "/api/rooms", Some(&to), Some(json!({"name": "ops", "public": false}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap_or_default().to_owned();
    let invite = r.body["invite"].as_str().unwrap_or_default().to_owned();
    let room = format!("/api/rooms/{id}");

    // a member adds someone by name; a stranger cannot see the room at all
    let r = c.req("POST", &format!("{room}/members"), Some(&to), Some(json!({"user": member}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(members(&r.body).contains(&member));
    assert_eq!(c.req("PATCH", &room, Some(&ts), Some(json!({"name": "mine"}))).await.status, 404);
    // a member who does not own it may not rename it
    let r = c.req("PATCH", &room, Some(&tm), Some(json!({"name": "mine"}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = c.req("PATCH", &room, Some(&to), Some(json!({"name": "ops renamed"}))).await;
    assert_eq!((r.status, r.body["name"].as_str()), (200, Some("ops renamed")));
    assert_eq!(c.req("PATCH", &room, Some(&to), Some(json!({"name": "  "}))).await.status, 422);

    // archived: readable, not writable
    let r = c.req("PATCH", &room, Some(&to), Some(json!({"archived": true}))).await;
    assert_eq!(r.body["archived"], true);
    let post = |t: String| {
        let c = &c;
        let room = room.clone();
        async move { c.req("POST", &format!("{room}/messages"), Some(&t), Some(json!({"text": "hi"}))).await.status }
    };
    assert_eq!(post(tm.clone()).await, 403);
    assert_eq!(c.req("GET", &format!("{room}/messages"), Some(&tm), None).await.status, 200);
    c.req("PATCH", &room, Some(&to), Some(json!({"archived": false}))).await;
    assert_eq!(post(tm.clone()).await, 201);

    // a new invitation: the old code no longer lets anyone in
    let r = c.req("POST", &format!("{room}/invite"), Some(&to), None).await;
    let fresh = r.body["invite"].as_str().unwrap_or_default().to_owned();
    assert!(!fresh.is_empty() && fresh != invite);
    let join = |code: String| {
        let (c, room, ts) = (&c, room.clone(), ts.clone());
        async move { c.req("POST", &format!("{room}/join"), Some(&ts), Some(json!({"invite": code}))).await.status }
    };
    assert_eq!(join(invite).await, 404);
    assert_eq!(join(fresh).await, 200);

    // the owner removes a member: no more reading
    let r = c.req("DELETE", &format!("{room}/members/{stranger}"), Some(&to), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!members(&r.body).contains(&stranger));
    assert_eq!(c.req("GET", &format!("{room}/messages"), Some(&ts), None).await.status, 404);

    // an administrator (not a member) deletes it
    assert_eq!(c.req("DELETE", &room, Some(&tm), None).await.status, 403);
    assert_eq!(c.req("DELETE", &room, Some(&ta), None).await.status, 204);
    assert_eq!(c.req("GET", &room, Some(&to), None).await.status, 404);
}

#[tokio::test]
async fn disabled_accounts_and_passwords() {
    let admin = name("root");
    let admins = vec![admin.clone()];
    let c = chat_with(move |cfg| cfg.admins = admins).await;
    // not the first account of the chat (that one administers)
    register(&c, &name("seed")).await;
    let user = name("user");
    let (tu, ta) = (register(&c, &user).await, register(&c, &admin).await);

    assert_eq!(c.req("GET", "/api/admin/users", Some(&tu), None).await.status, 403);
    let r = c.req("GET", "/api/admin/users", Some(&ta), None).await;
    assert_eq!(r.status, 200);
    let me = r.body.as_array().into_iter().flatten().find(|u| u["username"] == admin.as_str()).cloned();
    assert_eq!(me.map(|u| u["admin"].clone()), Some(json!(true)));
    assert_eq!(c.req("GET", "/api/me", Some(&ta), None).await.body["admin"], true);

    // disabled: its tokens end at once and it cannot log in; enabled again, it can
    let path = format!("/api/admin/users/{user}");
    let r = c.req("POST", &path, Some(&ta), Some(json!({"disabled": true}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.req("GET", "/api/me", Some(&tu), None).await.status, 401);
    let login = json!({"username": user, "password": PASSWORD});
    assert_eq!(c.req("POST", "/api/login", None, Some(login.clone())).await.status, 403);
    assert_eq!(
        c.req("POST", &format!("/api/admin/users/{admin}"), Some(&ta), Some(json!({"disabled": true}))).await.status,
        422
    );
    c.req("POST", &path, Some(&ta), Some(json!({"disabled": false}))).await;
    let r = c.req("POST", "/api/login", None, Some(login)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tu = r.body["token"].as_str().unwrap_or_default().to_owned();

    // a password change needs the current one
    let change = |old: &str, new: &str| json!({"old_password": old, "new_password": new});
    assert_eq!(c.req("POST", "/api/password", Some(&tu), Some(change("wrong one!", "a new secret"))).await.status, 403);
    assert_eq!(c.req("POST", "/api/password", Some(&tu), Some(change(PASSWORD, "short"))).await.status, 422);
    assert_eq!(c.req("POST", "/api/password", Some(&tu), Some(change(PASSWORD, "a new secret"))).await.status, 204);
    let with = |p: &str| json!({"username": user, "password": p});
    assert_eq!(c.req("POST", "/api/login", None, Some(with(PASSWORD))).await.status, 401);
    assert_eq!(c.req("POST", "/api/login", None, Some(with("a new secret"))).await.status, 200);
}

#[tokio::test]
async fn signup_modes() {
    // someone has an account already (the first account may always sign up)
    let open = chat().await;
    let seed = register(&open, &name("seed")).await;
    let r = open.req("POST", "/api/rooms", Some(&seed), Some(json!({"name": "club", "public": false}))).await;
    let (room, code) = (r.body["id"].as_str().unwrap_or_default().to_owned(), r.body["invite"].clone());

    let closed = chat_with(|cfg| cfg.signup = Signup::Closed).await;
    assert_eq!(closed.req("GET", "/api/config", None, None).await.body["signup"], "closed");
    let r =
        closed.req("POST", "/api/register", None, Some(json!({"username": name("late"), "password": PASSWORD}))).await;
    assert_eq!(r.status, 403, "{}", r.body);

    let invite = chat_with(|cfg| cfg.signup = Signup::Invite).await;
    let new = |code: Value| json!({"username": name("guest"), "password": PASSWORD, "invite": code});
    assert_eq!(invite.req("POST", "/api/register", None, Some(new(json!(null)))).await.status, 403);
    assert_eq!(invite.req("POST", "/api/register", None, Some(new(json!("not-a-code")))).await.status, 403);
    let r = invite.req("POST", "/api/register", None, Some(new(code))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // the invited account is in the room it was invited to
    let token = r.body["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(invite.req("GET", &format!("/api/rooms/{room}/messages"), Some(&token), None).await.status, 200);
}
