//! The two sides' methods, one trait each, in LSP's shapes.

use rpcpeer::progress::Progress;
use rpcpeer::{Context, ErrorObject};
use serde::{Deserialize, Serialize};

/// `window/showMessage`'s params.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShowMessageParams {
    /// 1 error, 2 warning, 3 info, 4 log.
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    /// The text.
    pub(crate) message: String,
}

/// `window/workDoneProgress/create`'s params: the token the server will
/// report under.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkDoneProgressCreateParams {
    /// Chosen by the server.
    pub(crate) token: String,
}

/// The `value` of a `$/progress` notification (LSP's work done progress).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum WorkDoneProgress {
    /// The work started.
    Begin {
        /// What the work is.
        title: String,
        /// How far it is, 0 to 100.
        #[serde(skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    /// The work goes on.
    Report {
        /// How far it is, 0 to 100.
        #[serde(skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    /// The work is done.
    End {
        /// What came of it.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// A typed progress report of `example/lineLengths`: one line measured.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LineMeasured {
    /// Which line, from 1.
    pub(crate) line: usize,
    /// Of how many.
    pub(crate) of: usize,
}

/// What the editor serves: the server calls these.
#[rpcpeer::api]
pub(crate) trait Editor {
    /// Shows a message to the user.
    #[rpc(name = "window/showMessage", params = "transparent")]
    async fn show_message(&self, params: ShowMessageParams);

    /// The server starts reporting progress under a token of its own.
    #[rpc(name = "window/workDoneProgress/create", params = "transparent")]
    async fn create_progress(
        &self,
        params: WorkDoneProgressCreateParams,
    ) -> Result<(), ErrorObject>;

    /// A progress report.
    #[rpc(name = "$/progress", params = "name")]
    async fn progress(&self, token: String, value: WorkDoneProgress);
}

/// What the language server serves: the editor calls these.
#[rpcpeer::api]
pub(crate) trait LanguageServer {
    /// Says hello, and shows the editor a message.
    #[rpc(name = "initialize", params = "name")]
    async fn initialize(&self, client: String, cx: Context) -> Result<String, ErrorObject>;

    /// Counts the words of `text`, reporting progress to the editor.
    #[rpc(name = "example/countWords", params = "name")]
    async fn count_words(&self, text: String) -> Result<usize, ErrorObject>;

    /// The length of each line of `text`, with a typed report per line:
    /// the caller's token travels in the params, and its client method
    /// returns a stream of the reports that ends with the answer.
    #[rpc(name = "example/lineLengths")]
    async fn line_lengths(
        &self,
        text: String,
        progress: Progress<LineMeasured>,
    ) -> Result<Vec<usize>, ErrorObject>;

    /// Indexes the workspace: never done, until the editor cancels it.
    #[rpc(name = "example/index")]
    async fn index(&self, cx: Context) -> Result<(), ErrorObject>;

    /// Ends the session; the editor then closes the connection.
    #[rpc(name = "shutdown")]
    async fn shutdown(&self) -> Result<(), ErrorObject>;
}
