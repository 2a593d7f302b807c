//! The `#[rpcpeer::api]` attribute. Use it through `rpcpeer` (feature
//! `macros`), whose documentation of `rpcpeer::api` has the examples: the
//! expansion names `::rpcpeer` paths.

use proc_macro::TokenStream;
use syn::{parse_macro_input, ItemTrait};

mod expand;
mod parse;

/// Turns a trait describing one side's methods into a typed router
/// registration and a typed client. See `rpcpeer::api`.
#[proc_macro_attribute]
pub fn api(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut parsed = parse::ApiArgs::default();
    let parser = syn::meta::parser(|meta| parsed.parse_meta(meta));
    parse_macro_input!(args with parser);
    let item = parse_macro_input!(item as ItemTrait);
    match parse::api(parsed, item) {
        Ok(api) => expand::api(&api).into(),
        Err(err) => err.to_compile_error().into(),
    }
}
