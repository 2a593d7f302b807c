//! The language server: one instance per connection, holding the editor's client.

use rpcpeer::progress::Progress;
use rpcpeer::stream::Framing;
use rpcpeer::{Context, Driver, ErrorObject, Router};

use crate::api::{
    EditorClient, LanguageServer, LineMeasured, ShowMessageParams, WorkDoneProgress,
    WorkDoneProgressCreateParams,
};

struct Server {
    editor: EditorClient,
}

fn failed(err: rpcpeer::Error) -> ErrorObject {
    ErrorObject::new(ErrorObject::INTERNAL_ERROR, err.to_string())
}

impl LanguageServer for Server {
    async fn initialize(&self, client: String, cx: Context) -> Result<String, ErrorObject> {
        // The context's peer is the editor too.
        crate::api::EditorClient::new(cx.peer().clone())
            .show_message(ShowMessageParams {
                kind: 3,
                message: format!("hello, {client}"),
            })
            .await
            .map_err(failed)?;
        Ok("word-counter".to_owned())
    }

    async fn count_words(&self, text: String) -> Result<usize, ErrorObject> {
        // LSP's server-started progress: ask for a token's use, then
        // begin, report and end under it.
        let token = "count".to_owned();
        let create = WorkDoneProgressCreateParams {
            token: token.clone(),
        };
        self.editor.create_progress(create).await.map_err(failed)?;
        let begin = WorkDoneProgress::Begin {
            title: "counting words".into(),
            percentage: Some(0),
        };
        self.editor
            .progress(token.clone(), begin)
            .await
            .map_err(failed)?;
        let lines: Vec<&str> = text.lines().collect();
        let mut words = 0;
        for (done, line) in lines.iter().enumerate() {
            words += line.split_whitespace().count();
            let percentage = u32::try_from((done + 1) * 100 / lines.len()).unwrap_or(100);
            let report = WorkDoneProgress::Report {
                percentage: Some(percentage),
            };
            self.editor
                .progress(token.clone(), report)
                .await
                .map_err(failed)?;
        }
        let end = WorkDoneProgress::End {
            message: Some(format!("{words} words")),
        };
        self.editor.progress(token, end).await.map_err(failed)?;
        Ok(words)
    }

    async fn line_lengths(
        &self,
        text: String,
        progress: Progress<LineMeasured>,
    ) -> Result<Vec<usize>, ErrorObject> {
        let lines: Vec<&str> = text.lines().collect();
        let mut lengths = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            lengths.push(line.chars().count());
            let measured = LineMeasured {
                line: i + 1,
                of: lines.len(),
            };
            progress.report(measured).await.map_err(failed)?;
        }
        Ok(lengths)
    }

    async fn index(&self, cx: Context) -> Result<(), ErrorObject> {
        let token = "index".to_owned();
        let create = WorkDoneProgressCreateParams {
            token: token.clone(),
        };
        self.editor.create_progress(create).await.map_err(failed)?;
        let begin = WorkDoneProgress::Begin {
            title: "indexing".into(),
            percentage: None,
        };
        self.editor.progress(token, begin).await.map_err(failed)?;
        // A cancelled call's future is dropped: work that must happen then
        // waits on the token, outside it.
        let token = cx.cancellation().clone();
        let editor = self.editor.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            let said = ShowMessageParams {
                kind: 3,
                message: "indexing cancelled".into(),
            };
            let _ = editor.show_message(said).await;
        });
        std::future::pending::<()>().await;
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ErrorObject> {
        Ok(())
    }
}

/// Serves the editor on stdin and stdout until it closes them.
pub(crate) async fn run() -> Result<(), rpcpeer::Error> {
    let mut router = Router::new();
    Server::register_per_connection(&mut router, |editor| Server {
        editor: EditorClient::new(editor.clone()),
    });
    let (_editor, driver) = Driver::new(rpcpeer::stream::stdio(Framing::ContentLength), router);
    driver.await
}
