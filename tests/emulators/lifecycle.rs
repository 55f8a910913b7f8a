//! Starting and stopping: `stop` leaves nothing listening and closes open sockets, `env` describes live
//! servers, and the `emulate` command prints working export lines and stops on its shutdown signal.

use std::io::Write;

use parley::emulators::cli::{HELP, run_with};
use parley::emulators::{DEEPGRAM_KEY, ELEVENLABS_KEY, OPENAI_KEY};
use tokio::sync::mpsc;

use crate::helpers::{Next, SOON, Ws, authority, post, raw, start};

#[actix_web::test]
async fn env_names_every_base_url_and_key() {
    let e = start().await;
    let env = e.env();
    let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("DEEPGRAM_BASE_URL"), e.deepgram_base_url());
    assert!(get("DEEPGRAM_BASE_URL").starts_with("ws://127.0.0.1:") && get("DEEPGRAM_BASE_URL").ends_with("/v1"));
    assert!(get("OPENAI_BASE_URL").starts_with("http://127.0.0.1:"));
    assert_eq!(get("DEEPGRAM_API_KEY"), DEEPGRAM_KEY);
    assert_eq!(get("OPENAI_API_KEY"), OPENAI_KEY);
    assert_eq!(get("ELEVENLABS_API_KEY"), ELEVENLABS_KEY);
    assert_eq!(env.len(), 6);
    e.stop().await;
}

#[actix_web::test]
async fn stop_closes_open_sockets_and_leaves_nothing_listening() {
    let e = start().await;
    let hosts =
        [authority(&e.deepgram_base_url()), authority(&e.openai_base_url()), authority(&e.elevenlabs_base_url())];
    let mut dg = Ws::connect(
        &format!("{}/listen", e.deepgram_base_url()),
        &[("Authorization", &format!("Token {DEEPGRAM_KEY}"))],
    )
    .await;
    let el_url = format!("{}/text-to-speech/v/multi-stream-input", e.elevenlabs_base_url().replacen("http", "ws", 1));
    let mut el = Ws::connect(&el_url, &[("xi-api-key", ELEVENLABS_KEY)]).await;
    e.stop().await;
    for ws in [&mut dg, &mut el] {
        assert!(matches!(ws.next(SOON).await, Next::Ended | Next::Close(_)), "socket still open after stop");
    }
    for host in hosts {
        assert!(tokio::net::TcpStream::connect(&host).await.is_err(), "{host} still listening");
    }
}

/// A writer that hands every write to the test.
struct Pipe(mpsc::UnboundedSender<Vec<u8>>);

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn the_emulate_command_prints_working_export_lines_and_stops_on_its_signal() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let args: Vec<String> =
        ["--openai-key", "cli-key", "--deepgram-idle-timeout-ms", "500"].iter().map(|s| s.to_string()).collect();
    let task = actix_web::rt::spawn(async move {
        let mut out = Pipe(tx);
        run_with(&args, &mut out, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut printed = String::new();
    while !printed.contains("Ctrl-C") {
        let chunk = tokio::time::timeout(SOON, rx.recv()).await.expect("output").expect("open");
        printed.push_str(&String::from_utf8_lossy(&chunk));
    }
    let line = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .to_string()
    };
    assert_eq!(line("OPENAI_API_KEY"), "cli-key");
    let host = authority(&line("OPENAI_BASE_URL"));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let r = raw(&host, &post("/v1/chat/completions", &host, &[("Authorization", "Bearer cli-key")], body)).await;
    assert_eq!(r.status, 200);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(SOON, task).await.expect("stops").expect("task").expect("run_with ok");
    assert!(tokio::net::TcpStream::connect(&host).await.is_err());
}

#[actix_web::test]
async fn help_prints_the_usage_and_bad_flags_fail() {
    let mut out = Vec::new();
    run_with(&["--help".to_string()], &mut out, async {}).await.unwrap();
    let twilio = parley::emulators::twilio::cli::HELP;
    assert_eq!(String::from_utf8(out).unwrap(), format!("{HELP}\n{twilio}"));
    let mut out = Vec::new();
    assert!(run_with(&["--bogus".to_string()], &mut out, async {}).await.is_err());
}
