//! The commands that do not run a node: `init`, `config`, and the clients
//! of a running node's API (`app`, `context`, `call`, `watch`, `peers`,
//! `sync`). Each prints text by default and the API's JSON with `--json`.

mod watch;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use weft::client::ApiClient;
use weft::config::{self, CONFIG_FILE, DEFAULT_CONFIG_TOML};
use weft::home::{self, InitOptions};
use weft::output::{self, short};

use crate::cli::{AppCommand, Cli, Command, ConfigCommand, ContextCommand, InitArgs, SyncCommand};

/// `weft init`.
pub fn init(cli: &Cli, args: &InitArgs) -> anyhow::Result<()> {
    let home = home::resolve_home(cli.home.as_deref())?;
    let swarm_listen = if args.swarm_listen.is_empty() {
        config::swarm_listen_for_port(args.swarm_port)
    } else {
        args.swarm_listen.clone()
    };
    let options = InitOptions {
        swarm_listen,
        bootstrap: args.bootstrap.clone(),
        api_listen: SocketAddr::from(([127, 0, 0, 1], args.api_port)),
        force: args.force,
    };
    let made = home::init(&home, &options)?;
    let api = api_url(made.config.api.listen);
    if cli.json {
        print_json(&json!({
            "home": made.home,
            "peer_id": made.peer_id,
            "swarm_listen": made.config.swarm.listen,
            "bootstrap": made.config.swarm.bootstrap,
            "api": api,
            "config": made.home.join(CONFIG_FILE),
        }))?;
        return Ok(());
    }
    println!("initialized {}", made.home.display());
    println!("  peer id  {}", made.peer_id);
    println!("  swarm    {}", made.config.swarm.listen.join(", "));
    println!("  api      {api}");
    println!("  config   {}", made.home.join(CONFIG_FILE).display());
    println!("start the node with: weft run --home {}", made.home.display());
    Ok(())
}

/// `weft config …`.
pub fn config(cli: &Cli, command: &ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Default => print!("{DEFAULT_CONFIG_TOML}"),
        ConfigCommand::Check => {
            let home = home::resolve_home(cli.home.as_deref())?;
            let config = home::load_config(&home)?;
            let seed = home::read_node_key(&home)?;
            let path = home.join(CONFIG_FILE);
            config.node_config(&home, seed, &path.display().to_string())?;
            if cli.json {
                print_json(&json!({"config": path, "ok": true}))?;
            } else {
                println!("{} is valid", path.display());
            }
        }
    }
    Ok(())
}

/// The HTTP URL of an API listening on `listen` (an unspecified address is
/// reached on loopback).
pub fn api_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// The client for `--api`/`--token`, else the home's config and token, else
/// the default API address.
fn api_client(cli: &Cli) -> anyhow::Result<ApiClient> {
    let home: Option<PathBuf> = home::resolve_home(cli.home.as_deref()).ok();
    let initialized = home.as_ref().filter(|home| home.join(CONFIG_FILE).exists());
    let base = match (&cli.api, initialized) {
        (Some(url), _) => url.clone(),
        (None, Some(home)) => api_url(home::load_config(home)?.api.listen),
        (None, None) => api_url(config::ConfigFile::default().api.listen),
    };
    // The home's token goes only to the home's node (or where --home says).
    let token = match (&cli.token, initialized) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(home)) if cli.api.is_none() || cli.home.is_some() => home::read_token(home)?,
        _ => None,
    };
    Ok(ApiClient::new(&base, token)?)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Print `value` as JSON with `--json`, else `human(value)`.
fn show(cli: &Cli, value: &Value, human: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    if cli.json {
        return print_json(value);
    }
    print!("{}", human(value));
    Ok(())
}

/// A hex id argument, checked before it goes into a URL path.
fn id_arg(what: &str, text: &str) -> anyhow::Result<String> {
    let hash: weft_primitives::Hash =
        text.trim().parse().map_err(|_| anyhow::anyhow!("{what} {text:?} is not an id (64 hex digits)"))?;
    Ok(hash.to_hex())
}

/// Every command that talks to a running node.
pub async fn client_command(cli: &Cli) -> anyhow::Result<()> {
    let client = api_client(cli)?;
    match &cli.command {
        Command::App(command) => app(cli, &client, command).await,
        Command::Context(command) => context(cli, &client, command).await,
        Command::Call(args) => call(cli, &client, &args.context, &args.method, args.args.clone()).await,
        Command::Watch { context } => watch::watch(cli, &client, context.as_deref()).await,
        Command::Peers => {
            let peers = client.get("/admin/peers").await?;
            show(cli, &peers, |peers| {
                if peers.as_array().is_some_and(Vec::is_empty) {
                    "no peers connected\n".into()
                } else {
                    output::peers_table(peers)
                }
            })
        }
        Command::Sync(command) => sync(cli, &client, command).await,
        Command::Init(_) | Command::Run | Command::Config(_) | Command::Demo(_) => {
            bail!("internal: {:?} is not a client command", cli.command)
        }
    }
}

async fn app(cli: &Cli, client: &ApiClient, command: &AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Install { file } => {
            let module = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let info = client.post_bytes("/admin/applications", module, "application/wasm").await?;
            show(cli, &info, |info| format!("installed {}\n{}", output::field(info, "name"), output::app_details(info)))
        }
        AppCommand::List => {
            let apps = client.get("/admin/applications").await?;
            show(cli, &apps, output::apps_table)
        }
        AppCommand::Show { id } => {
            let info = client.get(&format!("/admin/applications/{}", id_arg("application", id)?)).await?;
            show(cli, &info, output::app_details)
        }
        AppCommand::Remove { id } => {
            let id = id_arg("application", id)?;
            client.delete(&format!("/admin/applications/{id}")).await?;
            show(cli, &json!({"removed": id}), |_| format!("removed application {id}\n"))
        }
    }
}

async fn context(cli: &Cli, client: &ApiClient, command: &ContextCommand) -> anyhow::Result<()> {
    match command {
        ContextCommand::Create { app_id, init_args } => {
            let body = json!({
                "application": id_arg("application", app_id)?,
                "init_args": init_args.clone().unwrap_or_else(|| json!({})),
            });
            let info = client.post_json("/admin/contexts", &body).await?;
            show(cli, &info, |info| format!("created context {}\n", output::field(info, "id")))
        }
        ContextCommand::List => {
            let contexts = client.get("/admin/contexts").await?;
            show(cli, &contexts, |contexts| {
                if contexts.as_array().is_some_and(Vec::is_empty) {
                    "no contexts\n".into()
                } else {
                    output::contexts_table(contexts)
                }
            })
        }
        ContextCommand::Show { id } => {
            let info = client.get(&format!("/admin/contexts/{}", id_arg("context", id)?)).await?;
            show(cli, &info, output::context_details)
        }
        ContextCommand::Invite { id, invitee, valid_for } => {
            let invitee = invitee.as_deref().map(|key| id_arg("invitee key", key)).transpose()?;
            let body = json!({"invitee": invitee, "valid_for_secs": valid_for});
            let answer =
                client.post_json(&format!("/admin/contexts/{}/invitations", id_arg("context", id)?), &body).await?;
            show(cli, &answer, |answer| format!("{}\n", output::field(answer, "invitation")))
        }
        ContextCommand::Revoke { id, invitation } => {
            let path = format!("/admin/contexts/{}/invitations/revoke", id_arg("context", id)?);
            let answer = client.post_json(&path, &json!({"invitation": invitation.trim()})).await?;
            show(cli, &answer, |answer| format!("revoked invitation {}\n", output::field(answer, "revoked")))
        }
        ContextCommand::RemoveMember { id, member } => {
            let path = format!("/admin/contexts/{}/members/remove", id_arg("context", id)?);
            let answer = client.post_json(&path, &json!({"member": id_arg("member key", member)?})).await?;
            show(cli, &answer, |answer| {
                format!(
                    "removed {} (delta {}); the group key rotated\n",
                    output::field(answer, "removed"),
                    output::field(answer, "delta")
                )
            })
        }
        ContextCommand::Epochs { id } => {
            let epochs = client.get(&format!("/admin/contexts/{}/key-epochs", id_arg("context", id)?)).await?;
            show(cli, &epochs, output::key_epochs)
        }
        ContextCommand::Join { invitation } => {
            let info = client.post_json("/admin/contexts/join", &json!({"invitation": invitation.trim()})).await?;
            show(cli, &info, |info| format!("joined context {}\n", output::field(info, "id")))
        }
        ContextCommand::Leave { id } => {
            let id = id_arg("context", id)?;
            client.delete(&format!("/admin/contexts/{id}")).await?;
            show(cli, &json!({"left": id}), |_| format!("left context {id}\n"))
        }
        ContextCommand::Members { id } => {
            let members = client.get(&format!("/admin/contexts/{}/members", id_arg("context", id)?)).await?;
            show(cli, &members, |members| {
                let keys = members.as_array().map_or(&[][..], Vec::as_slice);
                keys.iter().map(|key| format!("{}\n", key.as_str().unwrap_or("-"))).collect()
            })
        }
    }
}

/// The JSON-RPC method for `method`: `execute` for a mutation, `query`
/// for a view, found in the context's application's method list.
async fn rpc_method_for(client: &ApiClient, context: &str, method: &str) -> anyhow::Result<&'static str> {
    let info = client.get(&format!("/admin/contexts/{context}")).await?;
    let Some(application) = info.get("application").and_then(Value::as_str) else {
        bail!("the node did not say which application context {} runs", short(context));
    };
    let app = client.get(&format!("/admin/applications/{application}")).await?;
    let methods = app.get("methods").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let kind = methods
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(method))
        .and_then(|m| m.get("kind").and_then(Value::as_str));
    match kind {
        Some("view") => Ok("query"),
        Some("mutate") => Ok("execute"),
        Some(other) => bail!("method {method:?} is a {other} method and cannot be called directly"),
        None => {
            let callable: Vec<&str> = methods
                .iter()
                .filter(|m| matches!(m.get("kind").and_then(Value::as_str), Some("view" | "mutate")))
                .filter_map(|m| m.get("name").and_then(Value::as_str))
                .collect();
            bail!(
                "application {} has no method {method:?} (it has: {})",
                output::field(&app, "name"),
                callable.join(", ")
            )
        }
    }
}

async fn call(cli: &Cli, client: &ApiClient, context: &str, method: &str, args: Option<Value>) -> anyhow::Result<()> {
    let context = id_arg("context", context)?;
    let rpc = rpc_method_for(client, &context, method).await?;
    let params = json!({"context": context, "method": method, "args": args.unwrap_or_else(|| json!({}))});
    let result = client.rpc(rpc, params).await?;
    if cli.json {
        return print_json(&result);
    }
    let out = result.get("output").cloned().unwrap_or(Value::Null);
    match output::call_output(&out) {
        Some(text) => println!("{text}"),
        None if rpc == "query" => println!("null"),
        None => {}
    }
    if rpc == "execute" {
        match result.get("delta").and_then(Value::as_str) {
            Some(delta) => eprintln!(
                "committed delta {} (root hash {})",
                short(delta),
                short(&output::field(&result, "root_hash"))
            ),
            None => eprintln!("nothing changed"),
        }
    }
    Ok(())
}

async fn sync(cli: &Cli, client: &ApiClient, command: &SyncCommand) -> anyhow::Result<()> {
    match command {
        SyncCommand::Status { context } => {
            let statuses = match context {
                Some(context) => client.rpc("sync_status", json!({"context": id_arg("context", context)?})).await?,
                None => client.get("/admin/sync").await?,
            };
            show(cli, &statuses, |statuses| {
                if statuses.as_array().is_some_and(Vec::is_empty) {
                    "no contexts\n".into()
                } else {
                    output::sync_table(statuses)
                }
            })
        }
        SyncCommand::Now { context } => {
            let context = context.as_deref().map(|c| id_arg("context", c)).transpose()?;
            let answer = client.post_json("/admin/sync", &json!({"context": context})).await?;
            show(cli, &answer, output::sync_now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_api_addresses_are_reached_on_loopback() {
        assert_eq!(api_url("0.0.0.0:2528".parse().unwrap()), "http://127.0.0.1:2528");
        assert_eq!(api_url("[::]:1".parse().unwrap()), "http://[::1]:1");
        assert_eq!(api_url("10.1.2.3:9".parse().unwrap()), "http://10.1.2.3:9");
    }

    #[test]
    fn ids_are_checked_before_they_reach_a_url() {
        assert!(id_arg("context", "../admin").is_err());
        assert_eq!(id_arg("context", &"AB".repeat(32)).unwrap(), "ab".repeat(32));
    }
}
