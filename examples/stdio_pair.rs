//! Two processes joined over stdio: this program spawns itself as a child
//! and both sides call each other over the child's stdin/stdout, with the
//! Language Server Protocol's Content-Length framing.
//!
//! Run it with `cargo run --example stdio_pair`.

use rpcpeer::stream::{spawn_child, stdio, Framing};
use rpcpeer::{Context, Driver, ErrorObject, Router};

fn remote(err: rpcpeer::Error) -> ErrorObject {
    ErrorObject::new(-32000, err.to_string())
}

/// The child: serves `add` and `greet`; `greet` asks the parent for its name.
async fn child() -> Result<(), rpcpeer::Error> {
    let mut router = Router::new();
    router.method("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    router.method("greet", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await.map_err(remote)?;
        cx.peer()
            .notify("log", [format!("child greeted {name}")])
            .await
            .map_err(remote)?;
        Ok::<_, ErrorObject>(format!(
            "hello, {name}, from process {}",
            std::process::id()
        ))
    });
    // stdout is the channel to the parent; anything for a person goes to stderr.
    let (_parent, driver) = Driver::new(stdio(Framing::ContentLength), router);
    driver.await
}

/// The parent: serves `name` and `log`, calls the child.
async fn parent() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.method("name", || async { Ok::<_, ErrorObject>("parent") });
    router.notification("log", |(line,): (String,)| async move {
        println!("child says: {line}")
    });

    let exe = std::env::current_exe()?;
    let (transport, mut process) = spawn_child(
        tokio::process::Command::new(exe).arg("child"),
        Framing::ContentLength,
    )?;
    let (child, driver) = Driver::new(transport, router);
    let driver = tokio::spawn(driver);

    let sum: i64 = child.request("add", (40, 2)).await?;
    println!("add(40, 2) = {sum}");
    let greeting: String = child.request("greet", ()).await?;
    println!("greet() = {greeting}");

    // Closing our end closes the child's stdin; it sees EOF and exits.
    child.close().await;
    driver.await??;
    let status = process.wait().await?;
    println!("child exited with {status}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("child") {
        child().await?;
        return Ok(());
    }
    parent().await
}
