//! `urbanmesh invite` and `urbanmesh join`: through the running node's admin API, or —
//! for `join` on a stopped node — stored for its next start.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{HealthArgs, InviteArgs, JoinArgs};
use urbanmesh::init::TOKEN_FILE;

pub(crate) async fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let node = running(&args.data_dir, args.url.as_deref()).await?.ok_or_else(|| {
        anyhow!(
            "the node in {} is not running; start it first (`urbanmesh run`), since an invitation names \
             the addresses it listens on",
            args.data_dir.display()
        )
    })?;
    let body = serde_json::json!({ "name": args.name, "ttl": args.ttl, "federation": args.federation });
    let answer = node.post("/api/v1/federation/invitations", &body).await?;
    let invitation = answer["invitation"].as_str().ok_or_else(|| anyhow!("the node answered without an invitation"))?;
    println!("{invitation}");
    Ok(())
}

pub(crate) async fn join(args: JoinArgs) -> anyhow::Result<()> {
    match running(&args.data_dir, args.url.as_deref()).await? {
        Some(node) => {
            let status =
                node.post("/api/v1/federation/join", &serde_json::json!({ "invitation": args.invitation })).await?;
            let name = status["federation"]["name"].as_str().unwrap_or("?");
            let members = status["members"].as_array().map_or(0, Vec::len);
            println!("joined the federation \"{name}\" ({members} members)");
        }
        None => {
            let meta = args.data_dir.join("meta");
            let db = sled::open(&meta).with_context(|| format!("opening {}", meta.display()))?;
            let invitation = urbanmesh_federation::join_on_next_start(db, &args.invitation)?;
            println!(
                "the node will join the federation \"{}\" (invited by {}) when it next starts",
                invitation.federation_name, invitation.inviter_name
            );
        }
    }
    Ok(())
}

/// `urbanmesh health`: whether the node answers `/readyz` with 200.
pub(crate) async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let address = match (&args.url, &args.data_dir) {
        (Some(url), _) => host_of(url)?.to_owned(),
        (None, Some(dir)) => bound(dir)?.ok_or_else(|| anyhow!("no node runs in {}", dir.display()))?,
        (None, None) => "127.0.0.1:8470".to_owned(),
    };
    let (status, _) =
        request(&address, "GET", "/readyz", None, &[]).await.with_context(|| format!("asking {address}"))?;
    if status != 200 {
        bail!("{address} is not ready (HTTP {status})");
    }
    println!("{address}: ready");
    Ok(())
}

/// The admin API of the node running in `data_dir`, if it runs.
struct AdminApi {
    address: String,
    token: String,
}

/// The node `data_dir` holds, at `url` or where its `addresses.json` says, if it answers.
async fn running(data_dir: &Path, url: Option<&str>) -> anyhow::Result<Option<AdminApi>> {
    let address = match url {
        Some(url) => host_of(url)?.to_owned(),
        None => match bound(data_dir)? {
            Some(address) => address,
            None => return Ok(None),
        },
    };
    if connect(&address).await.is_err() {
        // A node named by --url must answer: its database belongs to that process.
        if url.is_some() {
            bail!("no node answers at {address}");
        }
        return Ok(None);
    }
    let token = std::fs::read_to_string(data_dir.join(TOKEN_FILE)).context("reading the admin token")?;
    Ok(Some(AdminApi { address, token: token.trim().to_owned() }))
}

/// The HTTP address the node running in `data_dir` bound, from its `addresses.json`.
fn bound(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let Ok(text) = std::fs::read_to_string(data_dir.join("addresses.json")) else { return Ok(None) };
    let addresses: serde_json::Value = serde_json::from_str(&text).context("reading addresses.json")?;
    Ok(addresses["http"].as_str().and_then(|h| h.strip_prefix("http://")).map(str::to_owned))
}

/// `host:port` of an `http://` URL (TLS is a proxy's business in front of the node).
fn host_of(url: &str) -> anyhow::Result<&str> {
    url.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|host| !host.is_empty() && !host.contains('/'))
        .ok_or_else(|| anyhow!("--url must be the node's plain HTTP address, e.g. http://127.0.0.1:8470; got `{url}`"))
}

/// How long the CLI waits for a node: a health check must end before its orchestrator's.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn connect(address: &str) -> anyhow::Result<TcpStream> {
    Ok(tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| anyhow!("{address} did not accept a connection within {} s", CONNECT_TIMEOUT.as_secs()))??)
}

/// One HTTP/1.1 request: the status and the body.
async fn request(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let mut stream = connect(address).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.map_or(0, <[u8]>::len)));
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        stream.write_all(body).await?;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(ANSWER_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .map_err(|_| anyhow!("{address} did not answer within {} s", ANSWER_TIMEOUT.as_secs()))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("the node's answer is not HTTP"))?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}

impl AdminApi {
    /// One request with the admin token; the answer's JSON, or the problem's detail as error.
    async fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::to_vec(body)?;
        let authorization = format!("Bearer {}", self.token);
        let headers = [("Authorization", authorization.as_str()), ("Content-Type", "application/json")];
        let (status, body) = request(&self.address, "POST", path, Some(&body), &headers).await?;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        if !(200..300).contains(&status) {
            bail!("{}", json["detail"].as_str().unwrap_or(&body));
        }
        Ok(json)
    }
}
