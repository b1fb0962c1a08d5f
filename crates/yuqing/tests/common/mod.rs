//! Helpers shared by the binary-level tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port on 127.0.0.1 that nothing listens on right now.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd`, a `yuqing run`, listening on a port of the system's
/// choosing (`127.0.0.1:0`), and returns it with the address it prints on
/// standard output once it is up (`… http://ADDR…`). No port is picked
/// before the process binds it, so no other process can take it first.
/// Standard output is read to its end meanwhile.
pub async fn spawn_listening(cmd: &mut Command) -> (Child, SocketAddr) {
    let mut child = cmd
        .env("YUQING__SERVER__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let addr = line
                .split_once("http://")
                .and_then(|(_, rest)| rest.split(['/', ' ']).next())
                .and_then(|a| a.parse::<SocketAddr>().ok());
            if let (Some(addr), Some(tx)) = (addr, tx.take()) {
                let _ = tx.send(addr);
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(120), rx).await {
        Ok(Ok(addr)) => (child, addr),
        outcome => {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!("yuqing printed no address to listen on ({outcome:?}; exit {status:?})")
        }
    }
}
