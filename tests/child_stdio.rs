//! A parent and a child process joined over the child's stdin/stdout, in
//! both framings, calling each other.
//!
//! This test has no libtest harness (`harness = false`): the harness writes
//! its own progress to stdout, which here is the channel. The binary is
//! both sides: run plainly it is the parent, and it starts itself again with
//! `RPCPEER_TEST_CHILD` set to be the child.

use std::process::ExitCode;
use std::time::Duration;

use rpcpeer::{Context, Driver, ErrorObject, Router};
use rpcpeer_stream::Framing;

const CHILD_ENV: &str = "RPCPEER_TEST_CHILD";

fn remote(err: rpcpeer::Error) -> ErrorObject {
    ErrorObject::new(-32000, err.to_string())
}

/// The child serves `add` and `greet`; `greet` calls the parent back.
async fn child(framing: Framing) -> Result<(), String> {
    let mut router = Router::new();
    router.method("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    router.method("greet", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await.map_err(remote)?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    let (_parent, driver) = Driver::new(rpcpeer_stream::stdio(framing), router);
    driver.await.map_err(|e| e.to_string())
}

async fn parent(framing: Framing) -> Result<(), String> {
    let mut router = Router::new();
    router.method("name", || async { Ok::<_, ErrorObject>("parent") });
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env(CHILD_ENV, framing.to_string());
    let (transport, mut process) =
        rpcpeer_stream::spawn_child(&mut cmd, framing).map_err(|e| e.to_string())?;
    let (child, driver) = Driver::new(transport, router);
    let driver = tokio::spawn(driver);

    let sum: i64 = child
        .request("add", (40, 2))
        .await
        .map_err(|e| e.to_string())?;
    check(sum == 42, format!("add gave {sum}"))?;
    let greeting: String = child
        .request("greet", ())
        .await
        .map_err(|e| e.to_string())?;
    check(
        greeting == "hello, parent",
        format!("greet gave {greeting:?}"),
    )?;

    // Closing our end closes the child's stdin: it must exit by itself, cleanly.
    child.close().await;
    driver
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let status = process.wait().await.map_err(|e| e.to_string())?;
    check(status.success(), format!("the child exited with {status}"))
}

fn check(ok: bool, what: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Ok(framing) = std::env::var(CHILD_ENV) {
        let Ok(framing) = framing.parse() else {
            return ExitCode::FAILURE;
        };
        return match child(framing).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("child: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let (mut passed, mut failed) = (0, 0);
    for framing in [Framing::Newline, Framing::ContentLength] {
        let outcome = tokio::time::timeout(Duration::from_secs(20), parent(framing))
            .await
            .unwrap_or_else(|_| Err("no answer within 20 s".into()));
        match outcome {
            Ok(()) => {
                println!("test parent_and_child_call_each_other_over_stdio ({framing}) ... ok");
                passed += 1;
            }
            Err(err) => {
                println!("test parent_and_child_call_each_other_over_stdio ({framing}) ... FAILED: {err}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
