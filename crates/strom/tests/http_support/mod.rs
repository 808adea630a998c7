//! Shared by the HTTP endpoint tests: a real broker with its HTTP endpoint on a known free
//! port, a minimal HTTP/1.1 client over std TCP, and a strict Prometheus text-format
//! (0.0.4) parser.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::broker_support::TestBroker;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A broker with its HTTP endpoint at `http`.
pub struct HttpBroker {
    pub kafka: TestBroker,
    pub http: SocketAddr,
}

impl HttpBroker {
    pub fn start(extra: &[&str]) -> HttpBroker {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let setting = format!("http.listener={http}");
        let mut settings: Vec<&str> = vec![&setting];
        settings.extend_from_slice(extra);
        let kafka = TestBroker::start(&settings);
        let broker = HttpBroker { kafka, http };
        broker.wait_http();
        broker
    }

    fn wait_http(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = try_request(self.http, "GET", "/health", &[], b"") {
                if response.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "HTTP endpoint did not answer on {} within 30 s; log:\n{}",
            self.http,
            self.kafka.log()
        );
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(self.http, "GET", path, &[], b"")
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.json()
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> HttpResponse {
        request(
            self.http,
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    pub fn delete(&self, path: &str) -> HttpResponse {
        request(self.http, "DELETE", path, &[], b"")
    }

    /// Scrapes `/metrics` and parses it strictly.
    pub fn scrape(&self) -> Exposition {
        let response = self.get("/metrics");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        parse_exposition(&response.text()).unwrap_or_else(|error| {
            panic!("exposition does not parse: {error}\n{}", response.text())
        })
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

/// Sends raw bytes and returns whatever comes back before the server closes (or 10 s).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty head")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    } else if let Some(length) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        if body.len() < length {
            return Err(format!("body has {} of {length} bytes", body.len()));
        }
        body.truncate(length);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .map_err(|e| e.to_string())?
                .trim(),
            16,
        )
        .map_err(|e| e.to_string())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ------------------------------------------------------------ Prometheus text format 0.0.4

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub metric_type: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The value of the sample `name` whose labels include all of `labels`; panics if more
    /// than one matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matches: Vec<&Sample> = self
            .families
            .iter()
            .flat_map(|f| f.samples.iter())
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(
            matches.len() <= 1,
            "{name}{labels:?} matches {} samples",
            matches.len()
        );
        matches.first().map(|s| s.value)
    }

    /// Like [`Exposition::value`], 0 when absent.
    pub fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// `{a="x",b="y"}` → labels, and the rest of the line.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (index, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '"' => break index,
                '\n' => return Err("newline in label value".into()),
                c => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// Parses the text format strictly: every sample belongs to the family announced by the
/// preceding `# TYPE`, families are not repeated, names and labels are valid, values are
/// numbers, lines end with `\n`; histograms have ascending `le` buckets that never
/// decrease, a `+Inf` bucket equal to `_count`, and a `_sum`; counters end in `_total`.
pub fn parse_exposition(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    let mut exposition = Exposition::default();
    let mut pending_help: Option<(String, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let at = |message: String| format!("line {}: {message}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !valid_name(name) {
                return Err(at("bad metric name in HELP".into()));
            }
            pending_help = Some((name.to_string(), help.to_string()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, metric_type) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without type".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&metric_type) {
                return Err(at(format!("unknown type {metric_type}")));
            }
            if exposition.family(name).is_some() {
                return Err(at(format!("family {name} repeated")));
            }
            let help = match pending_help.take() {
                Some((help_name, help)) if help_name == name => help,
                _ => return Err(at(format!("TYPE {name} without a HELP just before"))),
            };
            if metric_type == "counter" && !name.ends_with("_total") {
                return Err(at(format!("counter {name} does not end in _total")));
            }
            if !name.starts_with("strom_") {
                return Err(at(format!("{name} lacks the strom_ prefix")));
            }
            exposition.families.push(Family {
                name: name.to_string(),
                metric_type: metric_type.to_string(),
                help,
                samples: Vec::new(),
            });
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| at("sample without value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at("bad sample name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value_text = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("expected a space before the value".into()))?;
        // No timestamps are written; a second field would be one.
        if value_text.contains(' ') {
            return Err(at("unexpected field after the value".into()));
        }
        let value = parse_value(value_text).map_err(at)?;
        let family = exposition
            .families
            .last_mut()
            .ok_or_else(|| at("sample before any TYPE".into()))?;
        let belongs = match family.metric_type.as_str() {
            "histogram" => [
                format!("{}_bucket", family.name),
                format!("{}_sum", family.name),
                format!("{}_count", family.name),
            ]
            .contains(&name.to_string()),
            _ => name == family.name,
        };
        if !belongs {
            return Err(at(format!(
                "sample does not belong to family {}",
                family.name
            )));
        }
        if family.metric_type == "counter" && (value < 0.0 || value.is_nan()) {
            return Err(at("negative counter".into()));
        }
        family.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for family in &exposition.families {
        if family.metric_type == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(exposition)
}

/// One histogram series: (le, cumulative count) buckets, `_sum`, `_count`.
type HistogramSeries = (Vec<(f64, f64)>, Option<f64>, Option<f64>);

fn check_histogram(family: &Family) -> Result<(), String> {
    // Group series by their labels without `le`.
    let mut series: BTreeMap<BTreeMap<String, String>, HistogramSeries> = BTreeMap::new();
    for sample in &family.samples {
        let mut labels = sample.labels.clone();
        let le = labels.remove("le");
        let entry = series.entry(labels).or_default();
        if sample.name.ends_with("_bucket") {
            let le = parse_value(&le.ok_or(format!("{} bucket without le", family.name))?)?;
            entry.0.push((le, sample.value));
        } else if sample.name.ends_with("_sum") {
            entry.1 = Some(sample.value);
        } else {
            entry.2 = Some(sample.value);
        }
    }
    for (labels, (buckets, sum, count)) in series {
        let count = count.ok_or(format!("{} {labels:?} has no _count", family.name))?;
        sum.ok_or(format!("{} {labels:?} has no _sum", family.name))?;
        if !buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        {
            return Err(format!(
                "{} {labels:?}: buckets not ascending and cumulative: {buckets:?}",
                family.name
            ));
        }
        match buckets.last() {
            Some((le, inf)) if le.is_infinite() && *inf == count => {}
            _ => {
                return Err(format!(
                    "{} {labels:?}: last bucket must be +Inf and equal _count {count}",
                    family.name
                ))
            }
        }
    }
    Ok(())
}
