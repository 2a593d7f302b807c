//! Writes what a read trait gives: the trait with `Send` futures and its registration, the typed client, the method names.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Ident;

use crate::parse::{camel, hidden, upper, Api, Input, Method, Output, ParamStyle};

pub(crate) fn api(api: &Api) -> TokenStream {
    let the_trait = the_trait(api);
    let register = register(api);
    let client = client(api);
    quote! {
        #the_trait
        #register
        #client
    }
}

/// The trait as written, each `async fn` turned into a method returning a
/// `Send` future (so a router can run it on any thread), plus the
/// provided methods that register an implementation.
fn the_trait(api: &Api) -> TokenStream {
    let item = &api.item;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.ident;
    let colon = &item.colon_token;
    let supertraits = &item.supertraits;
    let register_fn = hidden("register", ident);
    let client = format_ident!("{}Client", ident);
    let methods = api.methods.iter().map(|m| {
        let attrs = &m.attrs;
        let name = &m.ident;
        let args = m.inputs.iter().map(|input| match input {
            Input::Wire { ident, ty }
            | Input::Context { ident, ty }
            | Input::Progress { ident, ty, .. } => quote!(#ident: #ty),
        });
        let out = m.returned().map_or_else(|| quote!(()), |ty| quote!(#ty));
        quote! {
            #(#attrs)*
            fn #name(&self, #(#args),*) -> impl ::core::future::Future<Output = #out> + ::core::marker::Send;
        }
    });
    let doc_register = format!(
        "Registers this implementation's methods on `router`, one instance shared by every connection the router serves. The peer that called is in the `Context` a method may take; [`{client}`] calls it back."
    );
    let doc_per_connection = "Registers the methods on `router` with one implementation per connection, made by `make` on the connection's first call of this trait's methods from the `Peer` at its other end (to keep a client of it), and dropped with the connection. A type that implements two traits registered this way gets one instance per trait, each made by its own `make`.".to_owned();
    quote! {
        #(#attrs)*
        #vis trait #ident #colon #supertraits {
            #(#methods)*

            #[doc = #doc_register]
            fn register<S: ::core::marker::Send + ::core::marker::Sync + 'static>(
                self,
                router: &mut ::rpcpeer::Router<S>,
            ) where
                Self: ::core::marker::Sized + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                let shared = ::std::sync::Arc::new(self);
                #register_fn::<Self, S, _>(router, move |_: &::rpcpeer::Context<S>| shared.clone());
            }

            /// A router serving this implementation's methods alone (see `register`).
            fn into_router(self) -> ::rpcpeer::Router
            where
                Self: ::core::marker::Sized + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                let mut router = ::rpcpeer::Router::new();
                self.register(&mut router);
                router
            }

            #[doc = #doc_per_connection]
            fn register_per_connection<S, F>(router: &mut ::rpcpeer::Router<S>, make: F)
            where
                Self: ::core::marker::Sized + ::core::marker::Send + ::core::marker::Sync + 'static,
                S: ::core::marker::Send + ::core::marker::Sync + 'static,
                F: ::core::ops::Fn(&::rpcpeer::Peer) -> Self + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                let instances = ::rpcpeer::__private::PerConnection::<Self, #client>::new(make);
                #register_fn::<Self, S, _>(router, move |cx: &::rpcpeer::Context<S>| instances.get(cx));
            }
        }
    }
}

/// The hidden function that registers each method, given how to find the
/// implementation for a call.
fn register(api: &Api) -> TokenStream {
    let ident = &api.item.ident;
    let register_fn = hidden("register", ident);
    let client = format_ident!("{}Client", ident);
    let methods = api.methods.iter().map(|m| register_method(api, &client, m));
    // NB: every name this function and the closures in it bind is
    // `__rpcpeer_`-prefixed: the user's trait, param and type names reach
    // into it (a trait named `T`, a param named `cx`, a type named `S`),
    // and a plain name would shadow or be shadowed by theirs.
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #register_fn<__RpcpeerT, __RpcpeerS, __RpcpeerG>(
            __rpcpeer_router: &mut ::rpcpeer::Router<__RpcpeerS>,
            __rpcpeer_get: __RpcpeerG,
        )
        where
            __RpcpeerT: #ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            __RpcpeerS: ::core::marker::Send + ::core::marker::Sync + 'static,
            __RpcpeerG: ::core::ops::Fn(&::rpcpeer::Context<__RpcpeerS>) -> ::std::sync::Arc<__RpcpeerT>
                + ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            #(#methods)*
        }
    }
}

fn register_method(api: &Api, client: &Ident, m: &Method) -> TokenStream {
    let name = &m.ident;
    let constant = upper(name);
    // The schema keeps the name the struct would have had.
    let params_name = format!("{}Params", camel(name));
    let params_struct = format_ident!("__RpcpeerParams");
    let wire: Vec<_> = m.wire_args().collect();
    let wire_idents: Vec<_> = wire.iter().map(|(i, _)| *i).collect();
    let schema_derive = api.schema.then(|| {
        quote! {
            #[derive(::rpcpeer::schemars::JsonSchema)]
            #[schemars(crate = "::rpcpeer::schemars", rename = #params_name)]
        }
    });
    let progress = m.progress();
    // The caller's progress token, beside the params by name.
    let token_field = progress.map(|_| {
        quote! {
            #[serde(rename = "workDoneToken", default)]
            __rpcpeer_progress: ::core::option::Option<::rpcpeer::progress::ProgressToken>,
        }
    });
    let token_ident = progress.map(|_| quote!(__rpcpeer_progress));
    // The params the handler takes, and how it names them.
    let (declare, params_arg, bind) = match (m.params, wire.as_slice()) {
        (_, []) if progress.is_none() => (quote!(), quote!(), quote!()),
        (ParamStyle::Transparent, [(ident, ty)]) => (quote!(), quote!(#ident: #ty,), quote!()),
        _ => {
            // One struct for both styles: serde maps an array onto its
            // fields in order, and an object by name.
            let fields = wire
                .iter()
                .map(|(ident, ty)| quote_spanned!(ty.span()=> #ident: #ty));
            (
                quote! {
                    #[derive(::rpcpeer::__private::serde::Deserialize)]
                    // NB: serde's messages, which callers get in a -32602,
                    // name the struct by this name, as the schema does.
                    #[serde(crate = "::rpcpeer::__private::serde", rename = #params_name)]
                    #schema_derive
                    struct #params_struct { #(#fields,)* #token_field }
                },
                quote!(__rpcpeer_params: #params_struct,),
                quote!(let #params_struct { #(#wire_idents,)* #token_ident } = __rpcpeer_params;),
            )
        }
    };
    let bind_progress = progress.map(|(ident, _)| {
        quote! {
            let #ident = ::rpcpeer::progress::Progress::new(__rpcpeer_cx.peer().clone(), __rpcpeer_progress);
        }
    });
    let call_args = m.inputs.iter().map(|input| match input {
        Input::Wire { ident, .. }
        | Input::Context { ident, .. }
        | Input::Progress { ident, .. } => quote!(#ident),
    });
    let context = m.inputs.iter().find_map(|input| match input {
        Input::Context { ident, .. } => Some(ident),
        Input::Wire { .. } | Input::Progress { .. } => None,
    });
    let bind_context =
        context.map(|ident| quote!(let #ident = ::rpcpeer::__private::stateless(__rpcpeer_cx);));
    let call = quote!(__rpcpeer_imp.#name(#(#call_args),*).await);
    let body = match &m.output {
        Output::Notification => quote!({ #call; }),
        Output::Plain(_) => quote!(::core::result::Result::<_, ::rpcpeer::ErrorObject>::Ok(#call)),
        Output::Result { .. } => call,
    };
    // NB: a `Result` behind an alias reads as a plain value here, and would
    // be answered `{"result": {"Err": ..}}`; the compiler sees through the
    // alias and refuses it, pointing at the return type.
    let plain_check = match &m.output {
        Output::Plain(ty) => {
            let check = quote_spanned! {ty.span()=>
                ::rpcpeer::__private::plain(::rpcpeer::__private::ReturnType::<#ty>::new().check());
            };
            Some(quote! {
                {
                    // Unused when the type is a `Result`: the inherent method wins.
                    #[allow(unused_imports)]
                    use ::rpcpeer::__private::CheckPlain as _;
                    #check
                }
            })
        }
        Output::Notification | Output::Result { .. } => None,
    };
    let notification = matches!(m.output, Output::Notification);
    let register = match (notification, api.schema) {
        (false, false) => quote!(method),
        (true, false) => quote!(notification),
        (false, true) => quote!(method_with_schema),
        (true, true) => quote!(notification_with_schema),
    };
    let doc = (!m.doc.is_empty()).then(|| {
        let doc = &m.doc;
        quote!(.doc(#doc))
    });
    let concurrency = m
        .concurrency
        .as_ref()
        .map(|mode| quote!(.concurrency(::rpcpeer::Concurrency::#mode)));
    let own_task = m.own_task.then(|| quote!(.own_task()));
    // Each spanned at the method's own type, so that a type that does not
    // fit is pointed at there, not only at the attribute.
    let answerable = match &m.output {
        Output::Result { full, .. } => Some(quote_spanned! {full.span()=>
            ::rpcpeer::__private::answerable::<#full>();
        }),
        Output::Plain(ty) => Some(quote_spanned! {ty.span()=>
            ::rpcpeer::__private::answerable::<::core::result::Result<#ty, ::rpcpeer::ErrorObject>>();
        }),
        Output::Notification => None,
    };
    let described = match (&m.output, api.schema) {
        (Output::Result { full, .. }, true) => Some(quote_spanned! {full.span()=>
            ::rpcpeer::__private::described::<#full>();
        }),
        (Output::Plain(ty), true) => Some(quote_spanned! {ty.span()=>
            ::rpcpeer::__private::described::<::core::result::Result<#ty, ::rpcpeer::ErrorObject>>();
        }),
        _ => None,
    };
    let cfgs = &m.cfgs;
    quote! {
        #(#cfgs)*
        {
            #plain_check
            #answerable
            #described
            #declare
            let __rpcpeer_get = __rpcpeer_get.clone();
            let _ = __rpcpeer_router
                .#register(#client::#constant, move |#params_arg __rpcpeer_cx: ::rpcpeer::Context<__RpcpeerS>| {
                    let __rpcpeer_imp = __rpcpeer_get(&__rpcpeer_cx);
                    #bind
                    #bind_progress
                    #bind_context
                    async move { #body }
                })
                #doc
                #concurrency
                #own_task;
        }
    }
}

/// The client: one typed method per trait method over a `Peer`, and the
/// method names as constants.
fn client(api: &Api) -> TokenStream {
    let ident = &api.item.ident;
    let vis = &api.item.vis;
    let client = format_ident!("{}Client", ident);
    let doc = format!(
        "Calls the methods of [`{ident}`] on the peer at the other end of a connection: one typed method each, a request for each method that returns something, a notification for each that returns nothing."
    );
    let constants = api.methods.iter().map(|m| {
        let constant = upper(&m.ident);
        let wire = &m.wire;
        let doc = format!("The wire name of `{}`.", m.ident);
        let cfgs = &m.cfgs;
        quote!(#(#cfgs)* #[doc = #doc] #vis const #constant: &'static str = #wire;)
    });
    let all = api.methods.iter().map(|m| {
        let constant = upper(&m.ident);
        let cfgs = &m.cfgs;
        quote!(#(#cfgs)* Self::#constant)
    });
    let methods = api.methods.iter().map(|m| client_method(vis, m));
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #client {
            peer: ::rpcpeer::Peer,
        }

        impl #client {
            #(#constants)*

            /// Every method's wire name, in the order the trait declares them.
            #vis const METHODS: &'static [&'static str] = &[#(#all),*];

            /// A client calling the peer at the other end of `peer`'s connection.
            #vis fn new(peer: ::rpcpeer::Peer) -> Self {
                Self { peer }
            }

            /// The peer it calls.
            #vis fn peer(&self) -> &::rpcpeer::Peer {
                &self.peer
            }

            #(#methods)*
        }

        impl ::core::convert::From<::rpcpeer::Peer> for #client {
            fn from(peer: ::rpcpeer::Peer) -> Self {
                Self::new(peer)
            }
        }
    }
}

fn client_method(vis: &syn::Visibility, m: &Method) -> TokenStream {
    let name = &m.ident;
    let constant = upper(name);
    let wire: Vec<_> = m.wire_args().collect();
    let args = wire.iter().map(|(ident, ty)| quote!(#ident: #ty));
    let idents: Vec<_> = wire.iter().map(|(i, _)| *i).collect();
    let (declare, params) = match (m.params, wire.as_slice()) {
        (_, []) => (quote!(), quote!(())),
        (ParamStyle::Transparent, [(ident, _)]) => (quote!(), quote!(#ident)),
        // Transparent with more than one param was refused when read.
        (ParamStyle::Positional | ParamStyle::Transparent, [(_, first), ..]) => {
            // Spanned at a param's type, so that a param that does not
            // serialize is pointed at rather than the attribute.
            (quote!(), quote_spanned!(first.span()=> (#(#idents,)*)))
        }
        (ParamStyle::Named, _) => {
            let fields = wire.iter().map(|(ident, ty)| quote!(#ident: &'a #ty));
            (
                quote! {
                    #[derive(::rpcpeer::__private::serde::Serialize)]
                    #[serde(crate = "::rpcpeer::__private::serde")]
                    struct __RpcpeerNamed<'a> { #(#fields,)* }
                },
                quote!(__RpcpeerNamed { #(#idents: &#idents),* }),
            )
        }
    };
    let user_doc = m.attrs.iter().filter(|a| a.path().is_ident("doc"));
    let wire_name = &m.wire;
    let cfgs = &m.cfgs;
    // Spanned at the result's type, so that one that does not decode is
    // pointed at there.
    let decodable = match &m.output {
        Output::Plain(ok) | Output::Result { ok, .. } => Some(quote_spanned! {ok.span()=>
            ::rpcpeer::__private::decodable::<#ok>();
        }),
        Output::Notification => None,
    };
    let method = match &m.output {
        Output::Notification => {
            let doc = format!("Sends the notification `{wire_name}`.\n\n# Errors\n`Error::Closed` when the connection is gone, `Error::EncodeParams` when the params do not serialize to an array or object.\n\n# Cancel safety\nDropping the future before it returns may or may not send the notification.");
            quote! {
                #(#user_doc)*
                #[doc = ""]
                #[doc = #doc]
                #vis async fn #name(&self, #(#args),*) -> ::core::result::Result<(), ::rpcpeer::Error> {
                    #declare
                    self.peer.notify(Self::#constant, #params).await
                }
            }
        }
        Output::Plain(ok) | Output::Result { ok, .. } if m.progress().is_some() => {
            let report = m.progress().map(|(_, report)| report);
            let doc = format!("Calls `{wire_name}` with progress reports: the [`ProgressCall`](::rpcpeer::progress::ProgressCall) yields them in order, then `.await` gives the answer.\n\n# Errors\nAs `Peer::request`: `Error::Remote` for the peer's error object, `Error::Closed`, `Error::Timeout`, `Error::DecodeReply`; each report that does not decode is an `Error::DecodeReport` item.\n\n# Cancel safety\nDropping the call before the answer tells the peer to cancel it (`$/cancelRequest`).");
            quote! {
                #(#user_doc)*
                #[doc = ""]
                #[doc = #doc]
                #vis fn #name(&self, #(#args),*) -> ::rpcpeer::progress::ProgressCall<#report, #ok> {
                    #decodable
                    #declare
                    self.peer.request_with_progress::<#report, #ok>(Self::#constant, #params)
                }
            }
        }
        Output::Plain(ok) | Output::Result { ok, .. } => {
            let doc = format!("Calls `{wire_name}` and waits for its answer.\n\n# Errors\nAs `Peer::request`: `Error::Remote` for the peer's error object, `Error::Closed`, `Error::Timeout`, `Error::DecodeReply`.\n\n# Cancel safety\nDropping the future before the answer tells the peer to cancel the call (`$/cancelRequest`).");
            quote! {
                #(#user_doc)*
                #[doc = ""]
                #[doc = #doc]
                #vis async fn #name(&self, #(#args),*) -> ::core::result::Result<#ok, ::rpcpeer::Error> {
                    #decodable
                    #declare
                    self.peer.request::<#ok>(Self::#constant, #params).await
                }
            }
        }
    };
    quote! {
        #(#cfgs)*
        #method
    }
}
