//! An XML-RPC body read into a small tree, refusing what XML-RPC never needs: a DOCTYPE (so no entity is ever declared, fetched or expanded), other encodings than UTF-8, and nesting past a limit.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::ErrorObject;

/// One element: its local name (any `prefix:` dropped) and what it holds.
#[derive(Debug)]
pub(super) struct Element {
    pub(super) name: String,
    pub(super) children: Vec<Node>,
}

#[derive(Debug)]
pub(super) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// The child elements, or an error naming the text found among them.
    pub(super) fn elements(&self) -> Result<Vec<&Element>, ErrorObject> {
        let mut elements = Vec::new();
        for child in &self.children {
            match child {
                Node::Element(element) => elements.push(element),
                Node::Text(text) if text.trim().is_empty() => {}
                Node::Text(text) => {
                    return Err(super::invalid(format!(
                        "text {:?} inside <{}>, where only elements belong",
                        crate::excerpt::excerpt(text.trim()),
                        self.name
                    )))
                }
            }
        }
        Ok(elements)
    }

    /// Its text, when it holds no elements.
    pub(super) fn text(&self) -> Result<String, ErrorObject> {
        let mut text = String::new();
        for child in &self.children {
            match child {
                Node::Text(piece) => text.push_str(piece),
                Node::Element(inner) => {
                    return Err(super::invalid(format!(
                        "<{}> inside <{}>, which holds text only",
                        inner.name, self.name
                    )))
                }
            }
        }
        Ok(text)
    }
}

/// -32700, XML-RPC's fault code for a body that is not well-formed XML (the
/// fault code interoperability spec's, which JSON-RPC took).
fn not_well_formed(why: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::new(
        ErrorObject::PARSE_ERROR,
        format!("Parse error: not well-formed XML: {why}"),
    )
}

/// Reads `body` into its root element, at most `max_depth` elements deep.
///
/// # Errors
/// -32700 when it is not well-formed or carries a DOCTYPE, -32701 when it
/// declares another encoding than UTF-8, -32600 when it nests too deep.
pub(super) fn parse(body: &str, max_depth: usize) -> Result<Element, ErrorObject> {
    let mut reader = Reader::from_str(body);
    // Whole elements only: a mismatched end tag is malformed XML.
    reader.config_mut().check_end_names = true;
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(not_well_formed)?;
        match event {
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(not_well_formed)?;
                    let encoding = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
                    if !matches!(encoding.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                        return Err(ErrorObject::new(
                            -32701,
                            format!(
                                "Parse error: unsupported encoding {:?}: send UTF-8",
                                crate::excerpt::excerpt(&encoding)
                            ),
                        ));
                    }
                }
            }
            // NB: XML-RPC has no use for a DTD, and a DTD is where entities
            // are declared: refusing it is what keeps out external entities
            // and expansion bombs, whatever a later parser version expands.
            Event::DocType(_) => {
                return Err(not_well_formed(
                    "a DOCTYPE is not accepted (XML-RPC has no DTD, and no entities are declared or expanded)",
                ))
            }
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                return Err(not_well_formed(format!(
                    "<{name}> after the root element ended"
                )));
            }
            Event::Start(start) => {
                if open.len() >= max_depth {
                    return Err(super::invalid(format!(
                        "elements nested more than {max_depth} deep"
                    )));
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                open.push(Element {
                    name,
                    children: Vec::new(),
                });
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let element = Element {
                    name,
                    children: Vec::new(),
                };
                match open.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(mut element) = open.pop() else {
                    return Err(not_well_formed("an end tag with no start"));
                };
                // NB: a vector's first push makes room for four: most
                // elements hold one child, and a large call has hundreds
                // of thousands of them.
                element.children.shrink_to_fit();
                match open.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                let text = text.xml10_content().map_err(not_well_formed)?;
                push_text(&mut open, &text)?;
            }
            Event::CData(data) => {
                let text = data.xml10_content().map_err(not_well_formed)?;
                push_text(&mut open, &text)?;
            }
            Event::GeneralRef(reference) => {
                let text = match reference.resolve_char_ref().map_err(not_well_formed)? {
                    Some(ch) => ch.to_string(),
                    None => {
                        let name = reference.decode().map_err(not_well_formed)?;
                        // Only XML's five; any other would need a DTD.
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                not_well_formed(format!(
                                    "the entity &{}; is not declared (only &amp; &lt; &gt; &quot; &apos; and character references are known)",
                                    crate::excerpt::excerpt(&name)
                                ))
                            })?
                            .to_owned()
                    }
                };
                push_text(&mut open, &text)?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(not_well_formed("the body ends inside an element"));
    }
    root.ok_or_else(|| not_well_formed("no root element"))
}

/// Adds text to the element being read; outside the root only whitespace may be.
fn push_text(open: &mut [Element], text: &str) -> Result<(), ErrorObject> {
    match open.last_mut() {
        Some(element) => {
            match element.children.last_mut() {
                Some(Node::Text(before)) => before.push_str(text),
                _ => element.children.push(Node::Text(text.to_owned())),
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(not_well_formed(format!(
            "text {:?} outside the root element",
            crate::excerpt::excerpt(text.trim())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_and_cdata_is_text() {
        let root = parse("<a>x &amp; &#x41;&#66; <![CDATA[<y>]]></a>", 8).expect("well formed");
        assert_eq!(root.text().expect("text"), "x & AB <y>");
    }

    #[test]
    fn doctypes_undeclared_entities_and_deep_nesting_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        let err = parse(bomb, 8).expect_err("a DOCTYPE");
        assert_eq!(err.code, -32700);
        assert!(err.message.contains("DOCTYPE"), "{}", err.message);
        let err = parse("<a>&lol;</a>", 8).expect_err("an unknown entity");
        assert!(err.message.contains("&lol;"), "{}", err.message);
        let err = parse(&format!("{}{}", "<a>".repeat(9), "</a>".repeat(9)), 8).expect_err("deep");
        assert_eq!(err.code, -32600);
    }

    #[test]
    fn malformed_xml_gets_a_parse_error() {
        for body in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<a>1</a>x",
            "</a>",
        ] {
            let err = parse(body, 8).expect_err(body);
            assert_eq!(err.code, -32700, "{body}: {}", err.message);
        }
        let latin = r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#;
        assert_eq!(parse(latin, 8).expect_err("latin-1").code, -32701);
    }
}
