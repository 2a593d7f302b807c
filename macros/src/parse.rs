//! Reads the annotated trait into a model of its methods, refusing what cannot be a JSON-RPC method with an error that names it.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, FnArg, GenericArgument, Ident, ItemTrait, LitStr, Pat, PathArguments, Result,
    ReturnType, TraitItem, TraitItemFn, Type,
};

/// The names the macro gives provided methods of the trait: a method of
/// the user's may not take them.
pub(crate) const RESERVED: [&str; 3] = ["register", "register_per_connection", "into_router"];

/// The names of the generated client's own methods (`TraitClient::new`,
/// `TraitClient::peer`, and `clone` and `to_owned`, which an inherent
/// method would shadow, so that `client.clone()` made a call): a method of
/// the user's may not take them either.
pub(crate) const CLIENT: [&str; 4] = ["new", "peer", "clone", "to_owned"];

/// How a method's params travel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamStyle {
    /// An array, one item per param, in declaration order.
    Positional,
    /// An object, one member per param, named after it.
    Named,
    /// The one param is the params, as it is (LSP's style); a method
    /// without params sends none.
    Transparent,
}

impl ParamStyle {
    fn parse(lit: &LitStr) -> Result<Self> {
        match lit.value().as_str() {
            "position" => Ok(ParamStyle::Positional),
            "name" => Ok(ParamStyle::Named),
            "transparent" => Ok(ParamStyle::Transparent),
            other => Err(Error::new(
                lit.span(),
                format!("unknown params style `{other}`: expected \"position\" (an array), \"name\" (an object) or \"transparent\" (the one param is the params)"),
            )),
        }
    }
}

/// What the trait-level attribute says: `#[rpcpeer::api(schema, params = "name")]`.
#[derive(Default)]
pub(crate) struct ApiArgs {
    pub(crate) schema: bool,
    pub(crate) params: Option<ParamStyle>,
}

impl ApiArgs {
    pub(crate) fn parse_meta(&mut self, meta: ParseNestedMeta<'_>) -> Result<()> {
        if meta.path.is_ident("schema") {
            self.schema = true;
            Ok(())
        } else if meta.path.is_ident("params") {
            let lit: LitStr = meta.value()?.parse()?;
            self.params = Some(ParamStyle::parse(&lit)?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[rpcpeer::api]` argument: expected `schema` or `params = \"...\"`",
            ))
        }
    }
}

/// The trait, read.
pub(crate) struct Api {
    pub(crate) item: ItemTrait,
    pub(crate) schema: bool,
    pub(crate) methods: Vec<Method>,
}

/// One method of the trait.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// The name on the wire.
    pub(crate) wire: String,
    /// The attributes kept on the trait's method (docs, lints).
    pub(crate) attrs: Vec<Attribute>,
    /// Its `#[cfg]`s, which each piece written for it carries too.
    pub(crate) cfgs: Vec<Attribute>,
    /// The doc comment's text, for introspection.
    pub(crate) doc: String,
    pub(crate) inputs: Vec<Input>,
    pub(crate) output: Output,
    pub(crate) params: ParamStyle,
    /// `Concurrent`, `InOrder` or `Exclusive`, when set.
    pub(crate) concurrency: Option<Ident>,
    pub(crate) own_task: bool,
}

/// A param of a method, in declaration order. Built once per param, so its
/// size is no matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Input {
    /// A param that travels on the wire.
    Wire { ident: Ident, ty: Type },
    /// The call's `Context`, which does not.
    Context { ident: Ident, ty: Type },
    /// `Progress<T>`: the handler's end of the caller's progress reports,
    /// whose token travels as the params' `workDoneToken`; `report` is `T`.
    Progress {
        ident: Ident,
        ty: Type,
        report: Type,
    },
}

/// What a method returns. Built once per method, so its size is no matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Output {
    /// Nothing: a notification.
    Notification,
    /// A value that serializes: a request whose answer is always a result.
    Plain(Type),
    /// `Result<T, E>`: `ok` is `T`, `full` the whole type.
    Result { ok: Type, full: Type },
}

impl Method {
    pub(crate) fn wire_args(&self) -> impl Iterator<Item = (&Ident, &Type)> {
        self.inputs.iter().filter_map(|input| match input {
            Input::Wire { ident, ty } => Some((ident, ty)),
            Input::Context { .. } | Input::Progress { .. } => None,
        })
    }

    /// `T` of the method's `Progress<T>` param, if it has one.
    pub(crate) fn progress(&self) -> Option<(&Ident, &Type)> {
        self.inputs.iter().find_map(|input| match input {
            Input::Progress { ident, report, .. } => Some((ident, report)),
            _ => None,
        })
    }

    /// The type the trait's method returns (`()` for a notification).
    pub(crate) fn returned(&self) -> Option<&Type> {
        match &self.output {
            Output::Notification => None,
            Output::Plain(ty) | Output::Result { full: ty, .. } => Some(ty),
        }
    }
}

pub(crate) fn api(args: ApiArgs, item: ItemTrait) -> Result<Api> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(Error::new(
            item.generics.span(),
            format!(
                "`#[rpcpeer::api]` trait `{}` cannot be generic: each method needs one concrete params type",
                item.ident
            ),
        ));
    }
    let default_params = args.params.unwrap_or(ParamStyle::Positional);
    let mut methods: Vec<Method> = Vec::new();
    let mut errors: Option<Error> = None;
    for trait_item in &item.items {
        let parsed = match trait_item {
            TraitItem::Fn(f) => method(&item.ident, f, default_params, args.params.is_some()),
            other => Err(Error::new(
                other.span(),
                "`#[rpcpeer::api]` traits hold methods only (`async fn name(&self, ...)`)",
            )),
        };
        match parsed {
            Ok(m) => {
                if let Some(earlier) = methods.iter().find(|e| e.wire == m.wire) {
                    let err = Error::new(
                        m.ident.span(),
                        format!(
                            "methods `{}` and `{}` have the same wire name \"{}\"",
                            earlier.ident, m.ident, m.wire
                        ),
                    );
                    combine(&mut errors, err);
                } else if let Some(earlier) =
                    methods.iter().find(|e| upper(&e.ident) == upper(&m.ident))
                {
                    let err = Error::new(
                        m.ident.span(),
                        format!(
                            "methods `{}` and `{}` would both name the client's constant `{}Client::{}`: rename one",
                            earlier.ident, m.ident, item.ident, upper(&m.ident)
                        ),
                    );
                    combine(&mut errors, err);
                }
                methods.push(m);
            }
            Err(err) => combine(&mut errors, err),
        }
    }
    if let Some(err) = errors {
        return Err(err);
    }
    Ok(Api {
        item,
        schema: args.schema,
        methods,
    })
}

fn combine(errors: &mut Option<Error>, err: Error) {
    match errors {
        Some(all) => all.combine(err),
        None => *errors = Some(err),
    }
}

/// `the_trait`: the trait's name. `params_said`: whether the trait's
/// attribute chose `default_params`.
fn method(
    the_trait: &Ident,
    f: &TraitItemFn,
    default_params: ParamStyle,
    params_said: bool,
) -> Result<Method> {
    let sig = &f.sig;
    let name = &sig.ident;
    // `r#move` is the method `move` on the wire and in its constant `MOVE`.
    let bare = name.unraw().to_string();
    let keep_wire_name = format!("call the Rust method something else and keep the wire name with `#[rpc(name = \"{bare}\")]`");
    if RESERVED.contains(&bare.as_str()) {
        return Err(Error::new(
            name.span(),
            format!(
                "`{name}` is a name `#[rpcpeer::api]` gives the trait itself; {keep_wire_name}"
            ),
        ));
    }
    if CLIENT.contains(&bare.as_str()) {
        return Err(Error::new(
            name.span(),
            format!("`{name}` is a name `#[rpcpeer::api]` gives the client `{the_trait}Client` itself; {keep_wire_name}"),
        ));
    }
    // NB: each method's wire name is a constant named after it in upper
    // case, beside the client's own `METHODS`.
    if upper(name) == "METHODS" {
        return Err(Error::new(
            name.span(),
            format!("`{name}` would name its wire-name constant `{the_trait}Client::METHODS`, which the client has for all of them; {keep_wire_name}"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            format!("method `{name}` is generic: a JSON-RPC method has one concrete params type and result type, so write it without type, const or lifetime parameters"),
        ));
    }
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span,
            format!("method `{name}` must be an `async fn`"),
        ));
    }
    if let Some(body) = &f.default {
        return Err(Error::new(
            body.span(),
            format!("method `{name}` has a body: the trait describes the methods, an `impl` of it implements them"),
        ));
    }
    if sig.constness.is_some()
        || sig.unsafety.is_some()
        || sig.abi.is_some()
        || sig.variadic.is_some()
    {
        return Err(Error::new(
            sig.span(),
            format!("method `{name}` must be a plain `async fn` (not const, unsafe, extern or variadic)"),
        ));
    }
    let mut args = sig.inputs.iter();
    match args.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(other) => {
            return Err(Error::new(
                other.span(),
                format!("method `{name}` must take `&self` first (calls run concurrently, so not `&mut self` or `self`)"),
            ))
        }
        None => {
            return Err(Error::new(
                sig.paren_token.span.join(),
                format!("method `{name}` must take `&self` first"),
            ))
        }
    }
    let mut inputs = Vec::new();
    for arg in args {
        let FnArg::Typed(pat) = arg else {
            return Err(Error::new(arg.span(), "only the first param may be `self`"));
        };
        let Pat::Ident(ident) = &*pat.pat else {
            return Err(Error::new(
                pat.pat.span(),
                format!(
                    "each param of `{name}` needs a plain name (it names the param on the wire)"
                ),
            ));
        };
        let ident = ident.ident.clone();
        let ty = (*pat.ty).clone();
        check_owned(name, &ident, &ty)?;
        if is_context(&ty)? {
            if inputs.iter().any(|i| matches!(i, Input::Context { .. })) {
                return Err(Error::new(
                    ty.span(),
                    format!("method `{name}` takes two `Context` params"),
                ));
            }
            inputs.push(Input::Context { ident, ty });
        } else if let Some(report) = progress_report(&ty) {
            if inputs.iter().any(|i| matches!(i, Input::Progress { .. })) {
                return Err(Error::new(
                    ty.span(),
                    format!("method `{name}` takes two `Progress` params"),
                ));
            }
            inputs.push(Input::Progress { ident, ty, report });
        } else {
            inputs.push(Input::Wire { ident, ty });
        }
    }
    let output = output(name, &sig.output)?;

    let mut wire = bare.clone();
    let mut wire_span = name.span();
    let mut params = default_params;
    let mut params_said = params_said;
    let mut concurrency = None;
    let mut own_task = false;
    let mut attrs = Vec::new();
    let mut cfgs = Vec::new();
    let mut doc = Vec::new();
    for attr in &f.attrs {
        if attr.path().is_ident("rpc") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    let lit = meta.value()?.parse::<LitStr>()?;
                    wire = lit.value();
                    wire_span = lit.span();
                } else if meta.path.is_ident("params") {
                    params = ParamStyle::parse(&meta.value()?.parse()?)?;
                    params_said = true;
                } else if meta.path.is_ident("concurrency") {
                    let lit: LitStr = meta.value()?.parse()?;
                    let mode = match lit.value().as_str() {
                        "concurrent" => "Concurrent",
                        "in_order" => "InOrder",
                        "exclusive" => "Exclusive",
                        other => {
                            return Err(Error::new(
                                lit.span(),
                                format!("unknown concurrency `{other}`: expected \"concurrent\", \"in_order\" or \"exclusive\""),
                            ))
                        }
                    };
                    concurrency = Some(Ident::new(mode, lit.span()));
                } else if meta.path.is_ident("own_task") {
                    own_task = true;
                } else {
                    return Err(meta.error(
                        "unknown `#[rpc]` argument: expected `name = \"...\"`, `params = \"...\"`, `concurrency = \"...\"` or `own_task`",
                    ));
                }
                Ok(())
            })?;
            continue;
        }
        if attr.path().is_ident("doc") {
            if let syn::Meta::NameValue(nv) = &attr.meta {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                {
                    doc.push(s.value());
                }
            }
        }
        if attr.path().is_ident("cfg") {
            cfgs.push(attr.clone());
        }
        attrs.push(attr.clone());
    }
    // Spec §4: names beginning `rpc.` are reserved for rpc-internal
    // methods and extensions (the router's `rpc.discover` among them).
    if wire.starts_with("rpc.") {
        return Err(Error::new(
            wire_span,
            format!("method `{name}` would have the wire name \"{wire}\": JSON-RPC reserves names that begin with `rpc.` for rpc-internal methods and extensions (`Router::introspection` serves `rpc.discover`)"),
        ));
    }
    let wire_count = inputs
        .iter()
        .filter(|i| matches!(i, Input::Wire { .. }))
        .count();
    // None is fine: LSP's `shutdown` and `exit` send no params, and a trait
    // in LSP's style declares them next to methods that take one.
    if params == ParamStyle::Transparent && wire_count > 1 {
        return Err(Error::new(
            sig.span(),
            format!("method `{name}` has params = \"transparent\" and {wire_count} params: it takes one at most, which is sent as the params"),
        ));
    }
    // Spec §4.2: params are an array or an object. A scalar sent as the
    // params would fail every call; a struct, tuple or `Vec` is fine, and
    // any other type must serialize as one (the docs say so).
    if params == ParamStyle::Transparent {
        for input in &inputs {
            if let Input::Wire { ident, ty } = input {
                if let Some(scalar) = scalar(ty) {
                    return Err(Error::new_spanned(
                        ty,
                        format!("param `{ident}` of method `{name}` is a `{scalar}`, but with params = \"transparent\" the one param is the params, and JSON-RPC params are an array or an object: take a struct, or send it by position or by name (`#[rpc(params = \"position\")]`)"),
                    ));
                }
            }
        }
    }
    if inputs.iter().any(|i| matches!(i, Input::Progress { .. })) {
        if matches!(output, Output::Notification) {
            return Err(Error::new(
                sig.span(),
                format!("method `{name}` takes a `Progress` but returns nothing: a notification has no answer for reports to come before; return a value"),
            ));
        }
        // NB: the caller's token travels among the params by name (LSP's
        // `workDoneToken`), so a method with progress takes them so.
        if params_said && params != ParamStyle::Named {
            return Err(Error::new(
                sig.span(),
                format!("method `{name}` takes a `Progress`, so its params go by name (`params = \"name\"`): the caller's token travels as their `workDoneToken` member"),
            ));
        }
        params = ParamStyle::Named;
    }
    Ok(Method {
        ident: name.clone(),
        wire,
        attrs,
        cfgs,
        doc: unindent(&doc),
        inputs,
        output,
        params,
        concurrency,
        own_task,
    })
}

/// Params are decoded into values the handler owns: no borrowed or
/// anonymous (`impl Trait`) types, at the top or inside another type
/// (`Vec<&str>`, `Cow<'a, str>`).
fn check_owned(method: &Ident, param: &Ident, ty: &Type) -> Result<()> {
    match ty {
        Type::Reference(_) => Err(Error::new(
            ty.span(),
            format!("param `{param}` of method `{method}` is a reference: params are decoded into owned values (`String`, not `&str`)"),
        )),
        Type::ImplTrait(_) => Err(Error::new(
            ty.span(),
            format!("method `{method}` is generic (param `{param}` is `impl Trait`): a JSON-RPC method has one concrete params type"),
        )),
        _ => match borrow_inside(ty) {
            Some(span) => Err(Error::new(
                span,
                format!("param `{param}` of method `{method}` holds a borrow: params are decoded into owned values (`Vec<String>`, not `Vec<&str>`; `String`, not `Cow<'_, str>`)"),
            )),
            None => Ok(()),
        },
    }
}

/// Where `ty` borrows: a reference or a lifetime other than `'static`
/// anywhere in it (`'static` data decodes owned, as `Cow<'static, str>`).
fn borrow_inside(ty: &Type) -> Option<Span> {
    match ty {
        Type::Reference(_) => Some(ty.span()),
        Type::Paren(inner) => borrow_inside(&inner.elem),
        Type::Group(inner) => borrow_inside(&inner.elem),
        Type::Array(inner) => borrow_inside(&inner.elem),
        Type::Slice(inner) => borrow_inside(&inner.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(borrow_inside),
        Type::Path(path) => {
            let qself = path.qself.as_ref().and_then(|q| borrow_inside(&q.ty));
            qself.or_else(|| {
                path.path.segments.iter().find_map(|segment| {
                    let PathArguments::AngleBracketed(args) = &segment.arguments else {
                        return None;
                    };
                    args.args.iter().find_map(|arg| match arg {
                        GenericArgument::Type(inner) => borrow_inside(inner),
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            Some(lifetime.span())
                        }
                        _ => None,
                    })
                })
            })
        }
        _ => None,
    }
}

/// A doc comment's lines as rustdoc reads them: the indentation they all
/// share taken off, so that an indented code line keeps what it has more.
fn unindent(lines: &[String]) -> String {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = lines
        .iter()
        .map(|line| {
            line.get(indent..)
                .unwrap_or_else(|| line.trim_start())
                .trim_end()
        })
        .collect();
    lines.join("\n").trim_matches('\n').to_owned()
}

/// The name of `ty` when it is a primitive that serializes as a JSON
/// scalar (a number, a boolean or a string), by its spelling: an alias of
/// one is not seen.
fn scalar(ty: &Type) -> Option<String> {
    const SCALARS: [&str; 17] = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
        "f32", "f64", "bool", "char", "String",
    ];
    match ty {
        Type::Paren(inner) => scalar(&inner.elem),
        Type::Group(inner) => scalar(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            (matches!(last.arguments, PathArguments::None) && SCALARS.contains(&name.as_str()))
                .then_some(name)
        }
        _ => None,
    }
}

/// Whether `ty` is the call's context: a path ending in `Context`, which
/// must carry no state type (the implementation is the state).
fn is_context(ty: &Type) -> Result<bool> {
    let Type::Path(path) = ty else {
        return Ok(false);
    };
    let Some(last) = path.path.segments.last() else {
        return Ok(false);
    };
    if last.ident != "Context" {
        return Ok(false);
    }
    if !matches!(last.arguments, PathArguments::None) {
        return Err(Error::new(
            ty.span(),
            "the context param must be `Context` without a state type: the implementation is the state",
        ));
    }
    Ok(true)
}

/// `T` when `ty` is `Progress<T>` (a path ending in `Progress`, with one
/// type argument).
fn progress_report(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Progress" {
        return None;
    }
    // NB: only `Progress<T>`: an application's own `Progress` type without
    // a type argument stays a param on the wire.
    if let PathArguments::AngleBracketed(args) = &last.arguments {
        if let [syn::GenericArgument::Type(report)] = args.args.iter().collect::<Vec<_>>()[..] {
            return Some(report.clone());
        }
    }
    None
}

fn output(method: &Ident, output: &ReturnType) -> Result<Output> {
    let ty = match output {
        ReturnType::Default => return Ok(Output::Notification),
        ReturnType::Type(_, ty) => &**ty,
    };
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Ok(Output::Notification),
        Type::Reference(_) | Type::ImplTrait(_) => Err(Error::new(
            ty.span(),
            format!("method `{method}` must return an owned value that serializes (or `Result<T, E>` with `E: Into<ErrorObject>`)"),
        )),
        Type::Path(path) => {
            let result = path
                .path
                .segments
                .last()
                .filter(|last| last.ident == "Result");
            let Some(last) = result else {
                return Ok(Output::Plain(ty.clone()));
            };
            let ok = match &last.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                    GenericArgument::Type(t) => Some(t.clone()),
                    _ => None,
                }),
                _ => None,
            };
            let Some(ok) = ok else {
                return Err(Error::new(
                    ty.span(),
                    format!("method `{method}` returns a `Result` without its value type"),
                ));
            };
            Ok(Output::Result {
                ok,
                full: ty.clone(),
            })
        }
        _ => Ok(Output::Plain(ty.clone())),
    }
}

/// `ShowMessage` from `show_message`.
pub(crate) fn camel(ident: &Ident) -> String {
    ident
        .unraw()
        .to_string()
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// `SHOW_MESSAGE` from `show_message`.
pub(crate) fn upper(ident: &Ident) -> Ident {
    Ident::new(&ident.unraw().to_string().to_uppercase(), ident.span())
}

/// `__rpcpeer_register_Editor`: the hidden function behind the trait's
/// provided methods.
pub(crate) fn hidden(prefix: &str, ident: &Ident) -> Ident {
    Ident::new(
        &format!("__rpcpeer_{prefix}_{}", ident.unraw()),
        Span::call_site(),
    )
}
