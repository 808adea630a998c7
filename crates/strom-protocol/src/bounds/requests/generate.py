"""Turn kafka-protocol 0.18's generated request decoders into Strom bounds schemas.

Usage: python3 generate.py GROUP ApiName... (e.g. `generate.py data Produce Fetch`);
prints one module per API, to paste into requests/GROUP.rs. GROUP is only a label.
`python3 generate.py --samples ApiName...` prints the tests' `Sample` implementations.

One-shot tool; its output is reviewed and checked in. Every assumption about the shape of
the generated code is asserted, so a surprise stops the tool instead of producing a wrong
table.
"""
import re, sys, glob, os

SRC = glob.glob(os.path.expanduser('~/.cargo/registry/src/*/kafka-protocol-0.18.0/src/messages'))[0]

# Kinds the covered requests use. UInt16, UInt32 and Float64 (8, 4, 8 bytes) and
# OptionStruct (an INT8 marker, 1 = present) appear in other APIs: add them to
# `schema.rs`, the walker and this table when an API needs them.
FIXED = {'Int8': 'INT8', 'Boolean': 'BOOL', 'Int16': 'INT16', 'Int32': 'INT32', 'Float64': 'FLOAT64',
         'Int64': 'INT64', 'Uuid': 'UUID'}
COMPACT = {'CompactString': 'String', 'CompactBytes': 'Bytes', 'CompactArray': 'Array'}

def snake_upper(name):
    return re.sub(r'(?<!^)(?=[A-Z])', '_', name).upper()

def parse_structs(text):
    structs = {}
    for m in re.finditer(r'pub struct (\w+) \{(.*?)\n\}', text, re.S):
        fields = dict(re.findall(r'pub (\w+): ([^\n]+),', m.group(2)))
        structs[m.group(1)] = fields
    return structs

def parse_range_check(line):
    m = re.match(r'if version < (-?\d+) \|\| version > (\d+) \{', line)
    if m: return (int(m.group(1)), int(m.group(2)))
    m = re.match(r'if version != (\d+) \{', line)
    if m: return (int(m.group(1)), int(m.group(1)))
    raise ValueError(line)

def parse_cond(c):
    lo, hi = None, None
    for part in c.split('&&'):
        part = part.strip()
        m = re.fullmatch(r'version >= (\d+)', part)
        if m: lo = int(m.group(1)); continue
        m = re.fullmatch(r'version <= (\d+)', part)
        if m: hi = int(m.group(1)); continue
        raise ValueError(c)
    return lo, hi

class Lines:
    def __init__(self, lines): self.l = [x.strip() for x in lines if x.strip()]; self.i = 0
    def peek(self): return self.l[self.i]
    def next(self): x = self.l[self.i]; self.i += 1; return x
    def expect(self, s):
        x = self.next(); assert x == s, (x, s)

DECODE_RE = re.compile(r'(?:let (?:mut )?(\w+) = |(\w+) = )?(types::.*)\.decode\(buf\)\?;?$')

def parse_type(t):
    """types::CompactArray(types::Struct { version }) -> ('Array', True, elem)"""
    t = t.strip()
    m = re.fullmatch(r'types::(\w+)\((.*)\)', t)
    if m:
        kind = m.group(1)
        compact = kind in COMPACT
        base = COMPACT.get(kind, kind)
        assert base == 'Array', t
        return ('Array', compact, parse_type(m.group(2)))
    m = re.fullmatch(r'types::(Struct) \{ version \}', t)
    if m: return (m.group(1), None, None)
    m = re.fullmatch(r'types::(\w+)', t)
    kind = m.group(1)
    if kind in FIXED: return ('Fixed', None, FIXED[kind])
    if kind in COMPACT: return (COMPACT[kind], True, None)
    assert kind in ('String', 'Bytes'), t
    return (kind, False, None)

def parse_value(L):
    """Parse the expression after `let x = if cond {`: a decode, or a compact/non-compact pair."""
    x = L.next()
    if x.startswith('if version >= '):
        flex = int(re.fullmatch(r'if version >= (\d+) \{', x).group(1))
        a = DECODE_RE.fullmatch(L.next()).group(3)
        L.expect('} else {')
        b = DECODE_RE.fullmatch(L.next()).group(3)
        L.expect('}')
        return ('pair', flex, parse_type(a), parse_type(b))
    m = DECODE_RE.fullmatch(x)
    assert m, x
    return ('one', parse_type(m.group(3)))

def parse_decoder(body_lines):
    L = Lines(body_lines)
    L.expect('fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> Result<Self> {')
    rng = parse_range_check(L.next())
    L.expect('bail!("specified version not supported by this message type");')
    L.expect('}')
    fields, tagged, flex = [], [], None
    while True:
        x = L.peek()
        if x.startswith('Ok(Self'):
            break
        L.next()
        if re.fullmatch(r'let mut \w+ = (None|Default::default\(\)|Uuid::nil\(\)|-?\d+);', x):
            continue  # a tagged field's default
        if re.fullmatch(r'let \w+ = (None|false|true|Default::default\(\)|Uuid::nil\(\)|-?\d+);', x):
            continue  # a field of the schema that no version this crate knows carries
        if x == 'let mut unknown_tagged_fields = BTreeMap::new();':
            y = L.next()
            if y.startswith('if version >= '):
                flex = int(re.fullmatch(r'if version >= (\d+) \{', y).group(1)); y = L.next(); closing = True
            else:
                flex = rng[0]; closing = False
            assert y == 'let num_tagged_fields = types::UnsignedVarInt.decode(buf)?;', y
            L.expect('for _ in 0..num_tagged_fields {')
            L.expect('let tag: u32 = types::UnsignedVarInt.decode(buf)?;')
            L.expect('let size: u32 = types::UnsignedVarInt.decode(buf)?;')
            y = L.next()
            if y == 'match tag {':
                while True:
                    y = L.next()
                    if y == '_ => {':
                        L.expect('let unknown_value = buf.try_get_bytes(size as usize)?;')
                        L.expect('unknown_tagged_fields.insert(tag as i32, unknown_value);')
                        L.expect('}'); L.expect('}')
                        break
                    tag = int(re.fullmatch(r'(\d+) => \{', y).group(1))
                    z = L.next()
                    lo = None
                    if z.startswith('if version >= '):
                        lo = int(re.fullmatch(r'if version >= (\d+) \{', z).group(1)); z = L.next()
                    m = DECODE_RE.fullmatch(z); assert m and m.group(2), z
                    if lo is not None:
                        L.expect('} else {')
                        L.expect('bail!("Tag {} is not valid for version {}", tag, version);')
                        L.expect('}')
                    L.expect('}')
                    tagged.append((tag, m.group(2), lo, parse_type(m.group(3))))
            else:
                assert y == 'let unknown_value = buf.try_get_bytes(size as usize)?;', y
                L.expect('unknown_tagged_fields.insert(tag as i32, unknown_value);')
            L.expect('}')
            if closing: L.expect('}')
            continue
        m = DECODE_RE.fullmatch(x)
        if m and m.group(1):
            fields.append((m.group(1), (None, None), ('one', parse_type(m.group(3)))))
            continue
        m = re.fullmatch(r'let (\w+) = if (.*) \{', x)
        assert m, x
        cond = parse_cond(m.group(2))
        val = parse_value(L)
        L.expect('} else {')
        other = DECODE_RE.fullmatch(L.peek())
        if other and val[0] == 'one':
            # `if version >= flex { compact } else { classic }` with no presence condition.
            assert cond[1] is None, x
            L.next()
            val = ('pair', cond[0], val[1], parse_type(other.group(3)))
            cond = (None, None)
        while L.next() not in ('};',):
            pass
        fields.append((m.group(1), cond, val))
    return rng, flex, fields, tagged

def load(fname):
    text = open(os.path.join(SRC, fname)).read()
    structs = parse_structs(text)
    decoders = {}
    for m in re.finditer(r'^impl Decodable for (\w+) \{\n(.*?)\n\}$', text, re.S | re.M):
        decoders[m.group(1)] = parse_decoder(m.group(2).split('\n')[:-1])
    return structs, decoders

def struct_of(field_type, structs):
    names = [n for n in re.findall(r'\w+', field_type) if n in structs]
    assert len(names) == 1, field_type
    return names[0]

def vers(cond):
    lo, hi = cond
    if lo is None and hi is None: return ''
    if hi is None: return f'.since({lo})'
    if lo is None: return f'.until({hi})'
    return f'.between({lo}, {hi})'

def kind_expr(t, owner, fname, structs, flex, cond, msg_rng, compact_expected):
    kind, compact, extra = t
    if compact is not None and compact_expected is not None:
        assert compact == compact_expected, (owner, fname, t)
    if kind == 'Fixed': return extra
    if kind == 'String': return 'STRING'
    if kind == 'Bytes': return 'BYTES'
    if kind == 'Struct':
        s = snake_upper(struct_of(structs[owner][fname], structs))
        return f'Kind::Struct(&{s})'
    if kind == 'Array':
        return f'Kind::Array(&{kind_expr(extra, owner, fname, structs, flex, cond, msg_rng, compact)})'
    raise ValueError(t)

def field_expr(owner, name, cond, val, structs, flex, msg_rng):
    if val[0] == 'pair':
        _, f, a, b = val
        assert f == flex, (owner, name, f, flex)
        ka = kind_expr(a, owner, name, structs, flex, cond, msg_rng, True)
        kb = kind_expr(b, owner, name, structs, flex, cond, msg_rng, False)
        assert ka == kb, (ka, kb)
        k = ka
    else:
        t = val[1]
        lo = msg_rng[0] if cond[0] is None else cond[0]
        hi = msg_rng[1] if cond[1] is None else cond[1]
        # A single encoding is only right if the field lives wholly on one side of `flex`.
        def compactness(t):
            if t[1] is not None: return t[1]
            if t[0] == 'Array': return compactness(t[2])
            return None
        c = compactness(t)
        if c is True: assert flex is not None and lo >= flex, (owner, name)
        if c is False: assert flex is None or hi < flex, (owner, name)
        k = kind_expr(t, owner, name, structs, flex, cond, msg_rng, None)
    return f'field("{name}", {k}){vers(cond)}'

def emit(api, fname, root):
    structs, decoders = load(fname)
    rng, flex, _, _ = decoders[root]
    out = []
    order = [root] + [s for s in decoders if s != root]
    for s in order:
        srng, sflex, fields, tagged = decoders[s]
        assert srng == rng, (s, srng, rng)
        assert sflex == flex, (s, sflex, flex)
        out.append(f'/// `{s}`.')
        out.append(f'const {snake_upper(s)}: Struct = Struct {{')
        out.append(f'    name: "{s}",')
        if not fields:
            out.append('    fields: &[],')
        else:
            out.append('    fields: &[')
            for (name, cond, val) in fields:
                out.append(f'        {field_expr(s, name, cond, val, structs, flex, rng)},')
            out.append('    ],')
        if tagged:
            out.append('    tagged: &[')
            for (tag, name, lo, t) in tagged:
                k = kind_expr(t, s, name, structs, flex, (lo, None), rng, True)
                out.append(f'        tagged({tag}, "{name}", {k}){vers((lo, None))},')
            out.append('    ],')
        else:
            out.append('    tagged: &[],')
        out.append('};')
        out.append('')
    fl = f'Some({flex})' if flex is not None else 'None'
    head = [f'pub(in crate::bounds) const REQUEST: Message = Message {{',
            f'    api_key: ApiKey::{api},',
            f'    versions: Versions::new({rng[0]}, {rng[1]}),',
            f'    flexible_from: {fl},',
            f'    body: &{snake_upper(root)},',
            '};', '']
    return head + out

def rust_cond(cond):
    lo, hi = cond
    if lo is None and hi is None: return None
    if hi is None: return f'version >= {lo}'
    if lo is None: return f'version <= {hi}'
    return f'({lo}..={hi}).contains(&version)'

def emit_samples(api, fname):
    """`Sample` impls for the tests: every field a version carries gets a sampled value."""
    structs, decoders = load(fname)
    mod = fname[:-3]
    rng, flex, _, _ = decoders[api + 'Request']
    out = []
    for s, (_, _, fields, tagged) in decoders.items():
        out.append(f'impl Sample for {mod}::{s} {{')
        out.append('    fn sample(g: &mut Gen, version: i16) -> Self {')
        out.append('        let mut m = Self::default();')
        for (name, cond, _) in fields:
            c = rust_cond(cond)
            if c: out.append(f'        if {c} {{ m.{name} = g.sample(version); }}')
            else: out.append(f'        m.{name} = g.sample(version);')
        for (tag, name, lo, _) in tagged:
            c = rust_cond((max(lo or flex, flex), None))
            out.append(f'        if {c} {{ m.{name} = g.sample(version); }}')
        if 'unknown_tagged_fields' in structs[s]:
            out.append(f'        if version >= {flex} {{ m.unknown_tagged_fields = g.unknown_tagged_fields(); }}')
        out.append('        m')
        out.append('    }')
        out.append('}')
        out.append('')
    return out

if __name__ == '__main__' and sys.argv[1] == '--samples':
    lines = []
    for api in sys.argv[2:]:
        fname = snake_upper(api).lower() + '_request.rs'
        lines += emit_samples(api, fname)
    print('\n'.join(lines))
    sys.exit(0)

if __name__ == '__main__':
    group = sys.argv[1]
    apis = sys.argv[2:]
    lines = []
    for api in apis:
        fname = snake_upper(api).lower() + '_request.rs'
        mod = snake_upper(api).lower()
        lines.append(f'/// {api} (`{fname}` in kafka-protocol 0.18).')
        lines.append(f'pub(in crate::bounds) mod {mod} {{')
        lines.append('    use super::*;')
        lines.append('')
        for l in emit(api, fname, api + 'Request'):
            lines.append(('    ' + l) if l else '')
        while lines[-1] == '': lines.pop()
        lines.append('}')
        lines.append('')
    print('\n'.join(lines))
