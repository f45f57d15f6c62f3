//! Data forms (XEP-0004), with the `FORM_TYPE` convention of XEP-0068.

use crate::stanza::{ParseError, expect};
use crate::xml::element::Element;

/// `jabber:x:data`
pub const NS_DATA: &str = "jabber:x:data";

/// Most fields accepted in one form.
pub const MAX_FIELDS: usize = 256;
/// Most values or options accepted in one field.
pub const MAX_VALUES: usize = 256;

/// The form's `type` (XEP-0004 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormType {
    /// A form to fill in.
    Form,
    /// A filled-in form.
    Submit,
    /// The form-submitting entity cancelled.
    Cancel,
    /// Data returned (results, disco extensions).
    Result,
}

impl FormType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }
}

/// A field's `type` (XEP-0004 §3.3); absent means `text-single`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FieldType {
    /// `boolean`
    Boolean,
    /// `fixed`
    Fixed,
    /// `hidden`
    Hidden,
    /// `jid-multi`
    JidMulti,
    /// `jid-single`
    JidSingle,
    /// `list-multi`
    ListMulti,
    /// `list-single`
    ListSingle,
    /// `text-multi`
    TextMulti,
    /// `text-private`
    TextPrivate,
    /// `text-single` (the default)
    #[default]
    TextSingle,
}

impl FieldType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            "text-single" => FieldType::TextSingle,
            _ => return None,
        })
    }
}

/// An `<option/>` of a list field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldOption {
    /// Human-readable label.
    pub label: Option<String>,
    /// The value.
    pub value: String,
}

/// A `<field/>` (XEP-0004 §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Field {
    /// The variable name (absent only for `fixed` fields).
    pub var: Option<String>,
    /// The field type.
    pub kind: FieldType,
    /// Human-readable label.
    pub label: Option<String>,
    /// Description.
    pub desc: Option<String>,
    /// Whether the field must be filled in.
    pub required: bool,
    /// Values in order.
    pub values: Vec<String>,
    /// Options of a list field.
    pub options: Vec<FieldOption>,
}

impl Field {
    /// A field `var` of `kind` with `values`.
    pub fn new(var: impl Into<String>, kind: FieldType, values: Vec<String>) -> Self {
        Field {
            var: Some(var.into()),
            kind,
            values,
            ..Field::default()
        }
    }

    /// The first value.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    /// A boolean field's value (`1`/`true`, XEP-0004 §3.3).
    pub fn as_bool(&self) -> Option<bool> {
        match self.value()?.trim() {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        }
    }

    fn parse(e: &Element) -> Result<Self, ParseError> {
        let kind = match e.attr("type") {
            None => FieldType::TextSingle,
            Some(t) => FieldType::parse(t).ok_or_else(|| ParseError::InvalidAttr {
                element: "field",
                attr: "type",
                value: t.to_owned(),
            })?,
        };
        let var = e.attr("var").map(str::to_owned);
        if var.is_none() && kind != FieldType::Fixed {
            return Err(ParseError::MissingAttr {
                element: "field",
                attr: "var",
            });
        }
        let mut f = Field {
            var,
            kind,
            label: e.attr("label").map(str::to_owned),
            ..Field::default()
        };
        for c in e.elements().filter(|c| c.ns == NS_DATA) {
            match c.name.as_str() {
                "value" => {
                    if f.values.len() >= MAX_VALUES {
                        return Err(ParseError::TooMany {
                            what: "field values",
                            limit: MAX_VALUES,
                        });
                    }
                    f.values.push(c.text());
                }
                "option" => {
                    if f.options.len() >= MAX_VALUES {
                        return Err(ParseError::TooMany {
                            what: "field options",
                            limit: MAX_VALUES,
                        });
                    }
                    let value = c
                        .child("value", NS_DATA)
                        .ok_or(ParseError::MissingChild {
                            element: "option",
                            child: "<value/>",
                        })?
                        .text();
                    f.options.push(FieldOption {
                        label: c.attr("label").map(str::to_owned),
                        value,
                    });
                }
                "desc" => f.desc = Some(c.text()),
                "required" => f.required = true,
                _ => {}
            }
        }
        if f.values.len() > 1
            && !matches!(
                kind,
                FieldType::JidMulti | FieldType::ListMulti | FieldType::TextMulti
            )
        {
            return Err(ParseError::content(
                "field",
                format!("{} values in a {} field", f.values.len(), kind.as_str()),
            ));
        }
        Ok(f)
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("field", NS_DATA);
        if let Some(v) = &self.var {
            e.set_attr("var", v.clone());
        }
        if self.kind != FieldType::TextSingle {
            e.set_attr("type", self.kind.as_str());
        }
        if let Some(l) = &self.label {
            e.set_attr("label", l.clone());
        }
        if let Some(d) = &self.desc {
            e.push_child(Element::new("desc", NS_DATA).with_text(d.clone()));
        }
        if self.required {
            e.push_child(Element::new("required", NS_DATA));
        }
        for v in &self.values {
            e.push_child(Element::new("value", NS_DATA).with_text(v.clone()));
        }
        for o in &self.options {
            let mut oe = Element::new("option", NS_DATA)
                .with_child(Element::new("value", NS_DATA).with_text(o.value.clone()));
            if let Some(l) = &o.label {
                oe.set_attr("label", l.clone());
            }
            e.push_child(oe);
        }
        e
    }
}

/// A data form `<x xmlns='jabber:x:data'/>` (XEP-0004 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataForm {
    /// The form type.
    pub kind: FormType,
    /// Title.
    pub title: Option<String>,
    /// Instructions (one per `<instructions/>`).
    pub instructions: Vec<String>,
    /// The value of the hidden `FORM_TYPE` field (XEP-0068), kept out of `fields`.
    pub form_type: Option<String>,
    /// The other fields, in order.
    pub fields: Vec<Field>,
}

impl DataForm {
    /// An empty form of `kind`.
    pub fn new(kind: FormType, form_type: Option<&str>) -> Self {
        DataForm {
            kind,
            title: None,
            instructions: Vec::new(),
            form_type: form_type.map(str::to_owned),
            fields: Vec::new(),
        }
    }

    /// The field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of field `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var).and_then(Field::value)
    }

    /// Sets the values of field `var` (appending a text-single field when the form has
    /// none of that name).
    pub fn set_values(&mut self, var: &str, values: Vec<String>) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.var.as_deref() == Some(var))
        {
            Some(f) => f.values = values,
            None => self
                .fields
                .push(Field::new(var, FieldType::TextSingle, values)),
        }
    }

    /// Sets field `var` to the single value `value`.
    pub fn set_value(&mut self, var: &str, value: impl Into<String>) {
        self.set_values(var, vec![value.into()]);
    }

    /// The submission of this (received) form (XEP-0004 §3.1): `type='submit'`, the same
    /// `FORM_TYPE`, each field with a `var` with its type and values; `fixed` fields,
    /// labels, descriptions and options are left out.
    pub fn submission(&self) -> DataForm {
        let mut out = DataForm::new(FormType::Submit, self.form_type.as_deref());
        out.fields = self
            .fields
            .iter()
            .filter(|f| f.var.is_some() && f.kind != FieldType::Fixed)
            .map(|f| Field {
                var: f.var.clone(),
                kind: f.kind,
                values: f.values.clone(),
                ..Field::default()
            })
            .collect();
        out
    }

    /// Parses `<x xmlns='jabber:x:data'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "x", NS_DATA)?;
        let kind = match e.attr("type") {
            Some("form") => FormType::Form,
            Some("submit") => FormType::Submit,
            Some("cancel") => FormType::Cancel,
            Some("result") => FormType::Result,
            Some(o) => {
                return Err(ParseError::InvalidAttr {
                    element: "x",
                    attr: "type",
                    value: o.to_owned(),
                });
            }
            None => {
                return Err(ParseError::MissingAttr {
                    element: "x",
                    attr: "type",
                });
            }
        };
        let mut form = DataForm::new(kind, None);
        for c in e.elements().filter(|c| c.ns == NS_DATA) {
            match c.name.as_str() {
                "title" => form.title = Some(c.text()),
                "instructions" => form.instructions.push(c.text()),
                "field" => {
                    if form.fields.len() >= MAX_FIELDS {
                        return Err(ParseError::TooMany {
                            what: "form fields",
                            limit: MAX_FIELDS,
                        });
                    }
                    let f = Field::parse(c)?;
                    if f.var.as_deref() == Some("FORM_TYPE")
                        && f.kind == FieldType::Hidden
                        && form.form_type.is_none()
                    {
                        form.form_type = f.values.into_iter().next();
                    } else {
                        form.fields.push(f);
                    }
                }
                // <reported/> and <item/> (multi-item results) are not used by CUSAX.
                _ => {}
            }
        }
        Ok(form)
    }

    /// Builds the `<x/>` element (`FORM_TYPE` first).
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("x", NS_DATA).with_attr("type", self.kind.as_str());
        if let Some(t) = &self.title {
            e.push_child(Element::new("title", NS_DATA).with_text(t.clone()));
        }
        for i in &self.instructions {
            e.push_child(Element::new("instructions", NS_DATA).with_text(i.clone()));
        }
        if let Some(ft) = &self.form_type {
            e.push_child(Field::new("FORM_TYPE", FieldType::Hidden, vec![ft.clone()]).to_element());
        }
        for f in &self.fields {
            e.push_child(f.to_element());
        }
        e
    }
}

impl TryFrom<&Element> for DataForm {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        DataForm::from_element(e)
    }
}

impl From<&DataForm> for Element {
    fn from(f: &DataForm) -> Element {
        f.to_element()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    #[test]
    fn size() {
        assert!(
            std::mem::size_of::<Field>() <= 160,
            "{}",
            std::mem::size_of::<Field>()
        );
    }

    #[test]
    fn parse_roominfo() {
        let e = test_parse(
            "<x xmlns='jabber:x:data' type='result'><title>T</title><instructions>I</instructions>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roominfo</value></field>\
             <field var='muc#roominfo_occupants' label='Occupants'><value>3</value></field>\
             <field var='muc#roominfo_lang' type='list-single'><option label='English'><value>en</value></option><value>en</value></field>\
             <field var='p' type='boolean'><required/><desc>d</desc><value>true</value></field>\
             <field type='fixed'><value>section</value></field>\
             <field var='j' type='jid-multi'><value>a@b</value><value>c@d</value></field></x>",
        );
        let f = DataForm::from_element(&e).expect("valid");
        assert_eq!(f.kind, FormType::Result);
        assert_eq!(
            f.form_type.as_deref(),
            Some("http://jabber.org/protocol/muc#roominfo")
        );
        assert_eq!(f.title.as_deref(), Some("T"));
        assert_eq!(f.instructions, vec!["I".to_string()]);
        assert_eq!(f.value("muc#roominfo_occupants"), Some("3"));
        assert_eq!(
            f.field("muc#roominfo_lang").map(|x| x.options.len()),
            Some(1)
        );
        let p = f.field("p").expect("p");
        assert!(p.required);
        assert_eq!(p.as_bool(), Some(true));
        assert_eq!(p.desc.as_deref(), Some("d"));
        assert_eq!(f.field("j").map(|x| x.values.len()), Some(2));
        assert_eq!(f.fields.len(), 5);
        assert!(f.field("FORM_TYPE").is_none());
        let back = DataForm::from_element(&f.to_element()).expect("rt");
        assert_eq!(back, f);
    }

    #[test]
    fn invalid() {
        for (xml, want) in [
            ("<x xmlns='jabber:x:data'/>", "type"),
            ("<x xmlns='jabber:x:data' type='bogus'/>", "bogus"),
            (
                "<x xmlns='jabber:x:data' type='form'><field type='nope' var='a'/></x>",
                "nope",
            ),
            (
                "<x xmlns='jabber:x:data' type='form'><field type='text-single'/></x>",
                "var",
            ),
            (
                "<x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value><value>2</value></field></x>",
                "2 values",
            ),
            (
                "<x xmlns='jabber:x:data' type='form'><field var='a' type='list-single'><option/></field></x>",
                "value",
            ),
            ("<y xmlns='jabber:x:data' type='form'/>", "y"),
        ] {
            let err = DataForm::from_element(&test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn too_many_fields() {
        let mut xml = String::from("<x xmlns='jabber:x:data' type='form'>");
        for i in 0..=MAX_FIELDS {
            xml.push_str(&format!("<field var='f{i}'/>"));
        }
        xml.push_str("</x>");
        assert!(matches!(
            DataForm::from_element(&test_parse(&xml)),
            Err(ParseError::TooMany { .. })
        ));
    }
}
