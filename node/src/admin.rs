//! `urbanmesh invite` and `urbanmesh join`: through the running node's admin API, or —
//! for `join` on a stopped node — stored for its next start.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{InviteArgs, JoinArgs};
use urbanmesh::init::TOKEN_FILE;

pub(crate) async fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let node = running(&args.data_dir).await?.ok_or_else(|| {
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
    match running(&args.data_dir).await? {
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

/// The admin API of the node running in `data_dir`, if it runs.
struct AdminApi {
    address: String,
    token: String,
}

async fn running(data_dir: &Path) -> anyhow::Result<Option<AdminApi>> {
    let Ok(text) = std::fs::read_to_string(data_dir.join("addresses.json")) else { return Ok(None) };
    let addresses: serde_json::Value = serde_json::from_str(&text).context("reading addresses.json")?;
    let Some(address) = addresses["http"].as_str().and_then(|h| h.strip_prefix("http://")) else { return Ok(None) };
    if TcpStream::connect(address).await.is_err() {
        return Ok(None);
    }
    let token = std::fs::read_to_string(data_dir.join(TOKEN_FILE)).context("reading the admin token")?;
    Ok(Some(AdminApi { address: address.to_owned(), token: token.trim().to_owned() }))
}

impl AdminApi {
    /// One HTTP/1.1 request on loopback; the answer's JSON, or the problem's detail as error.
    async fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::to_vec(body)?;
        let mut stream = TcpStream::connect(&self.address).await?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            self.token,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("the node's answer is not HTTP"))?;
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        if !(200..300).contains(&status) {
            bail!("{}", json["detail"].as_str().unwrap_or(body));
        }
        Ok(json)
    }
}
