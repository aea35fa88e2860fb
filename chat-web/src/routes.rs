//! The warp filter tree: REST under /api, the WebSocket at /ws, the embedded UI at /;
//! every rejection goes through `error::recover`.

use std::collections::HashMap;

use warp::filters::BoxedFilter;
use warp::http::header;
use warp::{Filter, Rejection, Reply};

use crate::auth::TokenEnd;
use crate::body::{self, MESSAGE_JSON, SMALL_JSON};
use crate::error::{ApiError, recover};
use crate::handlers::{accounts, files, messages, reject, rooms};
use crate::live::Live;
use crate::state::App;
use crate::{sse, static_files, ws};

/// The chat state of the moment (a new one after a broker reconnect).
fn with_app(live: Live) -> impl Filter<Extract = (App,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || live.app())
}

fn bearer(value: Option<String>) -> Result<String, Rejection> {
    value
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| reject(ApiError::Unauthorized))
}

/// The raw bearer token of the request.
fn token() -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(|v: Option<String>| async move { bearer(v) })
}

/// The user the request's bearer token belongs to (401 otherwise).
fn user(live: Live) -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    with_app(live)
        .and(token())
        .and_then(|app: App, token: String| async move { app.local.tokens.check(&token).map_err(reject) })
}

/// A live session (WebSocket or event stream) for `token`: its user, and what ends it with the
/// token (logout or expiry).
fn live_session(app: &App, token: Option<&str>) -> Result<(String, TokenEnd), Rejection> {
    let (user, token_end) = app.local.tokens.watch(token.unwrap_or_default()).map_err(reject)?;
    if app.is_retired() {
        return Err(reject(ApiError::Broker("the chat is reconnecting to the broker; try again".into())));
    }
    Ok((user, token_end))
}

pub fn routes(live: Live) -> BoxedFilter<(Box<dyn Reply>,)> {
    let a = || with_app(live.clone());
    let u = || user(live.clone());
    let api = warp::path("api");

    let register = api
        .and(warp::path!("register"))
        .and(warp::post())
        .and(a())
        .and(crate::serve::remote())
        .and(body::json(SMALL_JSON))
        .and_then(accounts::register);
    let login = api
        .and(warp::path!("login"))
        .and(warp::post())
        .and(a())
        .and(crate::serve::remote())
        .and(body::json(SMALL_JSON))
        .and_then(accounts::login);
    let logout = api.and(warp::path!("logout")).and(warp::post()).and(a()).and(token()).and_then(accounts::logout);
    let me = api.and(warp::path!("me")).and(warp::get()).and(a()).and(u()).and_then(accounts::me);
    let users = api.and(warp::path!("users")).and(warp::get()).and(a()).and(u()).and_then(accounts::users);
    let config = api.and(warp::path!("config")).and(warp::get()).and(a()).and_then(accounts::config);
    let password = api
        .and(warp::path!("password"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(accounts::change_password);
    let admin_users =
        api.and(warp::path!("admin" / "users")).and(warp::get()).and(a()).and(u()).and_then(accounts::admin_users);
    let admin_change = api
        .and(warp::path!("admin" / "users" / String))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(|name, app, user, body| accounts::admin_change(app, user, name, body));
    let accounts = any_of(vec![
        bx(register),
        bx(login),
        bx(logout),
        bx(me),
        bx(users),
        bx(config),
        bx(password),
        bx(admin_users),
        bx(admin_change),
    ]);

    let list = api.and(warp::path!("rooms")).and(warp::get()).and(a()).and(u()).and_then(rooms::list);
    let create = api
        .and(warp::path!("rooms"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(rooms::create);
    let show = api.and(warp::path!("rooms" / String)).and(warp::get()).and(a()).and(u());
    let show = show.map(|id, app, user| (app, id, user)).untuple_one().and_then(rooms::show);
    let join = api
        .and(warp::path!("rooms" / String / "join"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::optional_json(SMALL_JSON))
        .and_then(|id, app, user, join| rooms::join(app, id, user, join));
    let leave = api.and(warp::path!("rooms" / String / "leave")).and(warp::post()).and(a()).and(u());
    let leave = leave.and_then(|id, app, user| rooms::leave(app, id, user));
    let add_member = api
        .and(warp::path!("rooms" / String / "members"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(|id, app, user, body| rooms::add_member(app, id, user, body));
    let direct = api.and(warp::path!("dm" / String)).and(warp::post()).and(a()).and(u());
    let direct = direct.and_then(|other, app, user| rooms::direct(app, other, user));
    let change = api
        .and(warp::path!("rooms" / String))
        .and(warp::patch())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(|id, app, user, body| rooms::change(app, id, user, body));
    let delete_room = api.and(warp::path!("rooms" / String)).and(warp::delete()).and(a()).and(u());
    let delete_room = delete_room.and_then(|id, app, user| rooms::delete(app, id, user));
    let remove = api.and(warp::path!("rooms" / String / "members" / String)).and(warp::delete()).and(a()).and(u());
    let remove = remove.and_then(|id, member, app, user| rooms::remove_member(app, id, member, user));
    let rotate = api.and(warp::path!("rooms" / String / "invite")).and(warp::post()).and(a()).and(u());
    let rotate = rotate.and_then(|id, app, user| rooms::rotate_invite(app, id, user));
    let rooms = any_of(vec![
        bx(list),
        bx(create),
        bx(show),
        bx(join),
        bx(leave),
        bx(add_member),
        bx(direct),
        bx(change),
        bx(delete_room),
        bx(remove),
        bx(rotate),
    ]);

    let history = api
        .and(warp::path!("rooms" / String / "messages"))
        .and(warp::get())
        .and(a())
        .and(u())
        .and(warp::query())
        .and_then(|room, app, user, q| messages::history(app, room, user, q));
    let post = api
        .and(warp::path!("rooms" / String / "messages"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(crate::serve::remote())
        .and(body::json(MESSAGE_JSON))
        .and_then(|room, app, user, addr, body| messages::post(app, room, user, addr, body));
    let edit = api
        .and(warp::path!("rooms" / String / "messages" / String))
        .and(warp::patch())
        .and(a())
        .and(u())
        .and(crate::serve::remote())
        .and(body::json(MESSAGE_JSON))
        .and_then(|room, id, app, user, addr, body| messages::edit(app, room, id, user, addr, body));
    let delete = api
        .and(warp::path!("rooms" / String / "messages" / String))
        .and(warp::delete())
        .and(a())
        .and(u())
        .and(crate::serve::remote())
        .and_then(|room, id, app, user, addr| messages::delete(app, room, id, user, addr));
    let read = api
        .and(warp::path!("rooms" / String / "read"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json(SMALL_JSON))
        .and_then(|room, app, user, body| messages::read(app, room, user, body));
    let search =
        api.and(warp::path!("search")).and(warp::get()).and(a()).and(u()).and(warp::query()).and_then(messages::search);
    let messages = any_of(vec![bx(history), bx(post), bx(edit), bx(delete), bx(read), bx(search)]);

    let upload = api
        .and(warp::path!("rooms" / String / "files"))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(crate::serve::remote())
        .and(warp::query())
        .and(warp::header::optional::<String>("content-type"))
        .and(body::announced_length())
        .and(warp::body::stream())
        .and_then(|room, app, user, addr, query, content_type, announced, body| {
            let req = files::UploadRequest { room, user, addr, query, content_type, announced };
            files::upload(app, req, body)
        });
    let download = api.and(warp::path!("files" / String / String)).and(warp::get()).and(a()).and(u());
    let download = download.and_then(|room, id, app, user| files::download(app, room, id, user));
    let files = any_of(vec![bx(upload), bx(download)]);

    let socket = warp::path!("ws")
        .and(warp::ws())
        .and(a())
        .and(crate::serve::remote())
        .and(warp::query::<HashMap<String, String>>());
    let socket = socket.and_then(
        |ws: warp::ws::Ws, app: App, addr: Option<std::net::SocketAddr>, q: HashMap<String, String>| async move {
            let (user, token_end) = live_session(&app, q.get("token").map(String::as_str))?;
            let ws = ws.max_message_size(ws::MAX_FRAME_BYTES).max_frame_size(ws::MAX_FRAME_BYTES);
            Ok::<_, Rejection>(Box::new(
                ws.on_upgrade(move |socket| ws::session::run(app, user, addr, token_end, socket)),
            ) as Box<dyn Reply>)
        },
    );

    // the fallback where WebSocket is blocked: Server-Sent Events, and the frames as POSTs
    let events = api
        .and(warp::path!("events"))
        .and(warp::get())
        .and(a())
        .and(crate::serve::remote())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("authorization"));
    let events = events.and_then(
        |app: App, addr: Option<std::net::SocketAddr>, q: HashMap<String, String>, auth: Option<String>| async move {
            let token = q.get("token").cloned().or_else(|| bearer(auth).ok());
            let (user, token_end) = live_session(&app, token.as_deref())?;
            Ok::<_, Rejection>(Box::new(sse::open(app, user, addr, token_end)) as Box<dyn Reply>)
        },
    );
    let event_frames = api
        .and(warp::path!("events" / String))
        .and(warp::post())
        .and(a())
        .and(u())
        .and(body::json::<serde_json::Value>(MESSAGE_JSON))
        .and_then(|id: String, app: App, user: String, body| async move {
            sse::post(&app, &id, &user, body).map_err(reject)?;
            Ok::<_, Rejection>(warp::reply::with_status(
                warp::reply::json(&serde_json::json!({"queued": true})),
                warp::http::StatusCode::ACCEPTED,
            ))
        });

    let ui = warp::get().and(warp::path::tail()).and_then(|tail: warp::path::Tail| async move {
        let path = tail.as_str();
        let path = if path.is_empty() { "index.html" } else { path };
        match static_files::get(path) {
            Some((body, mime)) => Ok(Box::new(warp::reply::with_header(
                warp::reply::with_header(body, header::CONTENT_TYPE, mime),
                header::CACHE_CONTROL,
                "no-cache",
            )) as Box<dyn Reply>),
            None => Err(warp::reject::not_found()),
        }
    });

    // (a default: a shared file's download sets a stricter one of its own)
    let security = warp::reply::with::default_header(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    );
    any_of(vec![accounts, rooms, messages, files, bx(socket), bx(events), bx(event_frames), bx(ui)])
        .recover(recover)
        .map(|r| Box::new(r) as Box<dyn Reply>)
        .with(security)
        .with(warp::reply::with::header("x-content-type-options", "nosniff"))
        .map(|r| Box::new(r) as Box<dyn Reply>)
        .boxed()
}

type Route = BoxedFilter<(Box<dyn Reply>,)>;

/// Box a route's reply, so that every branch of the tree has one type.
fn bx<F, R>(f: F) -> Route
where
    F: Filter<Extract = (R,), Error = Rejection> + Send + Sync + Clone + 'static,
    R: Reply + 'static,
{
    f.map(|r: R| Box::new(r) as Box<dyn Reply>).boxed()
}

/// Try routes in order.
fn any_of(routes: Vec<Route>) -> Route {
    let mut it = routes.into_iter();
    let first =
        it.next().unwrap_or_else(|| bx(warp::any().and_then(|| async { Err::<String, _>(warp::reject::not_found()) })));
    it.fold(first, |acc, r| acc.or(r).unify().boxed())
}
