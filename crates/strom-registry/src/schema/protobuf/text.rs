//! `.proto` text: a tokenizer and a recursive-descent parser for the parts of the language a
//! schema needs (see the module above for what is kept and what is skipped).

use super::{
    scalar, EnumType, Field, FieldType, Label, Message, Method, Nested, ProtoFile, Service, Syntax,
    FIELD_NUMBER_MAX, NESTING_DEPTH_MAX,
};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An identifier, possibly dotted (`foo.Bar`, `.pkg.Msg`).
    Ident(String),
    Int(i64),
    /// A float literal (only ever skipped, inside options).
    Float,
    Str(String),
    Symbol(char),
}

struct Lexer<'t> {
    chars: std::iter::Peekable<std::str::CharIndices<'t>>,
    line: usize,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut lexer = Lexer {
        chars: text.char_indices().peekable(),
        line: 1,
    };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push((token, lexer.line));
    }
    Ok(tokens)
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|(_, c)| *c)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next().map(|(_, c)| c);
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn next_token(&mut self) -> Result<Option<Token>, String> {
        loop {
            let Some(c) = self.peek() else {
                return Ok(None);
            };
            if c.is_whitespace() {
                self.bump();
                continue;
            }
            if c == '/' {
                self.bump();
                match self.peek() {
                    Some('/') => {
                        while let Some(c) = self.bump() {
                            if c == '\n' {
                                break;
                            }
                        }
                        continue;
                    }
                    Some('*') => {
                        self.bump();
                        let mut previous = ' ';
                        loop {
                            let Some(c) = self.bump() else {
                                return Err(format!("line {}: unterminated comment", self.line));
                            };
                            if previous == '*' && c == '/' {
                                break;
                            }
                            previous = c;
                        }
                        continue;
                    }
                    _ => return Ok(Some(Token::Symbol('/'))),
                }
            }
            if c.is_ascii_alphabetic() || c == '_' || c == '.' {
                let mut word = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                        word.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                if word == "." {
                    return Ok(Some(Token::Symbol('.')));
                }
                return Ok(Some(Token::Ident(word)));
            }
            if c.is_ascii_digit() {
                let mut literal = String::new();
                while let Some(c) = self.peek() {
                    let exponent_sign = (c == '+' || c == '-') && literal.ends_with(['e', 'E']);
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                        literal.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                return Ok(Some(self.number(&literal)?));
            }
            if c == '"' || c == '\'' {
                self.bump();
                return Ok(Some(Token::Str(self.string(c)?)));
            }
            self.bump();
            return Ok(Some(Token::Symbol(c)));
        }
    }

    fn number(&self, literal: &str) -> Result<Token, String> {
        let parsed = if let Some(hex) = literal
            .strip_prefix("0x")
            .or_else(|| literal.strip_prefix("0X"))
        {
            i64::from_str_radix(hex, 16).ok()
        } else if literal.len() > 1
            && literal.starts_with('0')
            && literal.bytes().all(|b| b.is_ascii_digit())
        {
            i64::from_str_radix(&literal[1..], 8).ok()
        } else {
            literal.parse::<i64>().ok()
        };
        match parsed {
            Some(n) => Ok(Token::Int(n)),
            None if literal.parse::<f64>().is_ok() || literal.ends_with(['f', 'F']) => {
                Ok(Token::Float)
            }
            None => Err(format!("line {}: bad number '{literal}'", self.line)),
        }
    }

    fn string(&mut self, quote: char) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(format!("line {}: unterminated string", self.line))
                }
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => return Err(format!("line {}: unterminated string", self.line)),
                },
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    syntax: Syntax,
}

pub(super) fn parse(text: &str) -> Result<ProtoFile, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
        syntax: Syntax::Proto2,
    };
    parser.file()
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_type_name(word: &str) -> bool {
    let body = word.strip_prefix('.').unwrap_or(word);
    !body.is_empty() && body.split('.').all(is_identifier)
}

impl Parser {
    fn line(&self) -> usize {
        self.tokens
            .get(self.at)
            .or_else(|| self.tokens.last())
            .map_or(1, |(_, line)| *line)
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        let found = match self.tokens.get(self.at) {
            Some((Token::Ident(w), _)) => format!("'{w}'"),
            Some((Token::Int(n), _)) => n.to_string(),
            Some((Token::Float, _)) => "a number".to_string(),
            Some((Token::Str(s), _)) => format!("\"{s}\""),
            Some((Token::Symbol(c), _)) => format!("'{c}'"),
            None => "the end of the text".to_string(),
        };
        Err(format!(
            "line {}: expected {what}, found {found}",
            self.line()
        ))
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(t, _)| t.clone());
        if token.is_some() {
            self.at += 1;
        }
        token
    }

    fn is_symbol(&self, symbol: char) -> bool {
        self.peek() == Some(&Token::Symbol(symbol))
    }

    fn eat_symbol(&mut self, symbol: char) -> bool {
        if self.is_symbol(symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: char) -> Result<(), String> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            self.error(&format!("'{symbol}'"))
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn identifier(&mut self, what: &str) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(w)) if is_identifier(w) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.error(what),
        }
    }

    fn type_name(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(w)) if is_type_name(w) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.error("a type name"),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        match self.peek() {
            Some(Token::Str(s)) => {
                let mut s = s.clone();
                self.at += 1;
                // Adjacent string literals concatenate.
                while let Some(Token::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.at += 1;
                }
                Ok(s)
            }
            _ => self.error(what),
        }
    }

    fn integer(&mut self) -> Result<i64, String> {
        let negative = self.eat_symbol('-');
        match self.peek() {
            Some(Token::Int(n)) => {
                let n = *n;
                self.at += 1;
                Ok(if negative { -n } else { n })
            }
            _ => self.error("an integer"),
        }
    }

    /// Skips to the end of a statement (`;`), over balanced braces, brackets and parens.
    fn skip_statement(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        loop {
            match self.next() {
                None => return self.error("';'"),
                Some(Token::Symbol('{' | '[' | '(' | '<')) => depth += 1,
                Some(Token::Symbol('}' | ']' | ')' | '>')) => {
                    depth = match depth.checked_sub(1) {
                        Some(d) => d,
                        None => return self.error("a balanced statement"),
                    }
                }
                Some(Token::Symbol(';')) if depth == 0 => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// Skips a `{ ... }` block (services' method options, `extend`, unknown blocks).
    fn skip_block(&mut self) -> Result<(), String> {
        self.expect_symbol('{')?;
        let mut depth = 1usize;
        while depth > 0 {
            match self.next() {
                None => return self.error("'}'"),
                Some(Token::Symbol('{')) => depth += 1,
                Some(Token::Symbol('}')) => depth -= 1,
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Skips `[ ... ]` field options.
    fn skip_field_options(&mut self) -> Result<(), String> {
        if !self.is_symbol('[') {
            return Ok(());
        }
        let mut depth = 0usize;
        loop {
            match self.next() {
                None => return self.error("']'"),
                Some(Token::Symbol('[' | '{')) => depth += 1,
                Some(Token::Symbol(']' | '}')) => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }
    }

    fn file(&mut self) -> Result<ProtoFile, String> {
        let mut file = ProtoFile {
            syntax: Syntax::Proto2,
            edition: None,
            package: String::new(),
            imports: Vec::new(),
            messages: Vec::new(),
            enums: Vec::new(),
            services: Vec::new(),
        };
        if self.eat_word("syntax") {
            self.expect_symbol('=')?;
            file.syntax = match self.string("\"proto2\" or \"proto3\"")?.as_str() {
                "proto2" => Syntax::Proto2,
                "proto3" => Syntax::Proto3,
                other => return Err(format!("line {}: unknown syntax \"{other}\"", self.line())),
            };
            self.expect_symbol(';')?;
        } else if self.eat_word("edition") {
            self.expect_symbol('=')?;
            file.edition = Some(self.string("an edition")?);
            file.syntax = Syntax::Editions;
            self.expect_symbol(';')?;
        }
        self.syntax = file.syntax;
        let mut package_seen = false;
        while self.peek().is_some() {
            if self.eat_symbol(';') {
                continue;
            }
            let Some(Token::Ident(word)) = self.peek().cloned() else {
                return self.error("a top-level declaration");
            };
            self.at += 1;
            match word.as_str() {
                "package" => {
                    if package_seen {
                        return Err(format!("line {}: a second package statement", self.line()));
                    }
                    package_seen = true;
                    let name = self.type_name()?;
                    if name.starts_with('.') {
                        return self.error("a package name");
                    }
                    file.package = name;
                    self.expect_symbol(';')?;
                }
                "import" => {
                    let modifier = if self.eat_word("public") {
                        Some("public")
                    } else if self.eat_word("weak") {
                        Some("weak")
                    } else {
                        None
                    };
                    let path = self.string("an import path")?;
                    self.expect_symbol(';')?;
                    file.imports.push((path, modifier));
                }
                "option" => self.skip_statement()?,
                "message" => file.messages.push(self.message(0)?),
                "enum" => file.enums.push(self.enumeration()?),
                "service" => file.services.push(self.service()?),
                "extend" => {
                    self.type_name()?;
                    self.skip_block()?;
                }
                _ => {
                    self.at -= 1;
                    return self.error(
                        "syntax, package, import, option, message, enum, service or extend",
                    );
                }
            }
        }
        Ok(file)
    }

    fn message(&mut self, depth: usize) -> Result<Message, String> {
        let name = self.identifier("a message name")?;
        self.message_body(name, depth)
    }

    fn message_body(&mut self, name: String, depth: usize) -> Result<Message, String> {
        if depth > NESTING_DEPTH_MAX {
            return Err(format!(
                "messages nested deeper than {NESTING_DEPTH_MAX} levels"
            ));
        }
        let mut message = Message {
            name,
            ..Message::default()
        };
        self.expect_symbol('{')?;
        loop {
            if self.eat_symbol('}') {
                return Ok(message);
            }
            if self.eat_symbol(';') {
                continue;
            }
            if self.peek().is_none() {
                return self.error("'}'");
            }
            self.message_item(&mut message, None, depth)?;
        }
    }

    fn message_item(
        &mut self,
        message: &mut Message,
        oneof: Option<usize>,
        depth: usize,
    ) -> Result<(), String> {
        let Some(Token::Ident(word)) = self.peek().cloned() else {
            return self.error("a field or declaration");
        };
        match word.as_str() {
            "message" if oneof.is_none() => {
                self.at += 1;
                message.messages.push(self.message(depth + 1)?);
                let index = message.messages.len() - 1;
                message.nested_order.push(Nested::Message(index));
            }
            "enum" if oneof.is_none() => {
                self.at += 1;
                message.enums.push(self.enumeration()?);
            }
            "option" => {
                self.at += 1;
                self.skip_statement()?;
            }
            "extensions" if oneof.is_none() => {
                self.at += 1;
                self.skip_statement()?;
            }
            "reserved" if oneof.is_none() => {
                self.at += 1;
                self.reserved(message)?;
            }
            "extend" if oneof.is_none() => {
                self.at += 1;
                self.type_name()?;
                self.skip_block()?;
            }
            "oneof" if oneof.is_none() => {
                self.at += 1;
                let name = self.identifier("a oneof name")?;
                let index = message.oneofs.len();
                message.oneofs.push(name);
                self.expect_symbol('{')?;
                loop {
                    if self.eat_symbol('}') {
                        break;
                    }
                    if self.eat_symbol(';') {
                        continue;
                    }
                    if self.peek().is_none() {
                        return self.error("'}'");
                    }
                    self.message_item(message, Some(index), depth)?;
                }
            }
            "map" if self.tokens.get(self.at + 1).map(|(t, _)| t) == Some(&Token::Symbol('<')) => {
                self.at += 2;
                let key_name = self.type_name()?;
                let Some(key) = scalar(&key_name) else {
                    return Err(format!(
                        "line {}: map key type '{key_name}' is not a scalar",
                        self.line()
                    ));
                };
                self.expect_symbol(',')?;
                let value = self.field_type()?;
                if matches!(value, FieldType::Map(..)) {
                    return self.error("a map value type");
                }
                self.expect_symbol('>')?;
                let name = self.identifier("a field name")?;
                self.expect_symbol('=')?;
                let number = self.integer()?;
                self.skip_field_options()?;
                self.expect_symbol(';')?;
                message.fields.push(Field {
                    name,
                    number,
                    label: Label::Plain,
                    field_type: FieldType::Map(key, Box::new(value)),
                    oneof,
                });
                let index = message.fields.len() - 1;
                message.nested_order.push(Nested::MapEntry(index));
            }
            _ => self.field(message, oneof, depth)?,
        }
        Ok(())
    }

    fn field_type(&mut self) -> Result<FieldType, String> {
        let name = self.type_name()?;
        Ok(match scalar(&name) {
            Some(s) => FieldType::Scalar(s),
            None => FieldType::Named {
                written: name,
                resolved: None,
            },
        })
    }

    fn field(
        &mut self,
        message: &mut Message,
        oneof: Option<usize>,
        depth: usize,
    ) -> Result<(), String> {
        let label = if oneof.is_some() {
            Label::Plain
        } else if self.eat_word("optional") {
            Label::Optional
        } else if self.eat_word("required") {
            Label::Required
        } else if self.eat_word("repeated") {
            Label::Repeated
        } else {
            if self.syntax == Syntax::Proto2 {
                return self.error("a label (optional, required or repeated) in proto2");
            }
            Label::Plain
        };
        if self.is_word("group") && self.syntax == Syntax::Proto2 {
            // proto2 group: a nested message and a field of that type in one statement.
            self.at += 1;
            let group_name = self.identifier("a group name")?;
            self.expect_symbol('=')?;
            let number = self.integer()?;
            self.skip_field_options()?;
            let nested = self.message_body(group_name.clone(), depth + 1)?;
            message.fields.push(Field {
                name: group_name.to_ascii_lowercase(),
                number,
                label,
                field_type: FieldType::Named {
                    written: group_name,
                    resolved: None,
                },
                oneof,
            });
            message.messages.push(nested);
            let index = message.messages.len() - 1;
            message.nested_order.push(Nested::Message(index));
            return Ok(());
        }
        let field_type = self.field_type()?;
        let name = self.identifier("a field name")?;
        self.expect_symbol('=')?;
        let number = self.integer()?;
        self.skip_field_options()?;
        self.expect_symbol(';')?;
        message.fields.push(Field {
            name,
            number,
            label,
            field_type,
            oneof,
        });
        Ok(())
    }

    fn reserved(&mut self, message: &mut Message) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(Token::Str(_)) => {
                    let name = self.string("a reserved name")?;
                    message.reserved_names.push(name);
                }
                Some(Token::Ident(_)) if self.syntax == Syntax::Editions => {
                    let name = self.identifier("a reserved name")?;
                    message.reserved_names.push(name);
                }
                _ => {
                    let from = self.integer()?;
                    let to = if self.eat_word("to") {
                        if self.eat_word("max") {
                            FIELD_NUMBER_MAX
                        } else {
                            self.integer()?
                        }
                    } else {
                        from
                    };
                    if to < from {
                        return self.error("a range whose end is not below its start");
                    }
                    message.reserved_ranges.push((from, to));
                }
            }
            if self.eat_symbol(';') {
                return Ok(());
            }
            self.expect_symbol(',')?;
        }
    }

    fn enumeration(&mut self) -> Result<EnumType, String> {
        let mut e = EnumType {
            name: self.identifier("an enum name")?,
            values: Vec::new(),
        };
        self.expect_symbol('{')?;
        loop {
            if self.eat_symbol('}') {
                return Ok(e);
            }
            if self.eat_symbol(';') {
                continue;
            }
            if self.eat_word("option") || self.eat_word("reserved") {
                self.skip_statement()?;
                continue;
            }
            let name = self.identifier("an enum value name")?;
            self.expect_symbol('=')?;
            let number = self.integer()?;
            self.skip_field_options()?;
            self.expect_symbol(';')?;
            e.values.push((name, number));
        }
    }

    fn service(&mut self) -> Result<Service, String> {
        let mut service = Service {
            name: self.identifier("a service name")?,
            methods: Vec::new(),
        };
        self.expect_symbol('{')?;
        loop {
            if self.eat_symbol('}') {
                return Ok(service);
            }
            if self.eat_symbol(';') {
                continue;
            }
            if self.eat_word("option") {
                self.skip_statement()?;
                continue;
            }
            if !self.eat_word("rpc") {
                return self.error("rpc or option");
            }
            let name = self.identifier("a method name")?;
            self.expect_symbol('(')?;
            let input_stream = self.is_stream();
            let input = self.type_name()?;
            self.expect_symbol(')')?;
            if !self.eat_word("returns") {
                return self.error("returns");
            }
            self.expect_symbol('(')?;
            let output_stream = self.is_stream();
            let output = self.type_name()?;
            self.expect_symbol(')')?;
            if self.is_symbol('{') {
                self.skip_block()?;
            } else {
                self.expect_symbol(';')?;
            }
            service.methods.push(Method {
                name,
                input,
                input_stream,
                output,
                output_stream,
                resolved: None,
            });
        }
    }

    /// `stream` before a type (but a type may itself be called `stream`).
    fn is_stream(&mut self) -> bool {
        let next_is_type = matches!(self.tokens.get(self.at + 1), Some((Token::Ident(_), _)));
        if self.is_word("stream") && next_is_type {
            self.at += 1;
            true
        } else {
            false
        }
    }
}
