#!/usr/bin/env python3
"""Per-crate size of the guest binary, from the symbol table of its unstripped build, grouped
the way cargo-bloat groups them. Used by scripts/tcb-report.

    crate_sizes.py UNSTRIPPED STRIPPED NO_C_REGEX

Reads the ELF file directly (what `nm -S` would list): every symbol with a size in an
executable section counts as `.text`, in `.rodata*` or `.data.rel.ro*` (constants that hold
pointers) as `.rodata`. Aliases (one address, several names) count once. Symbols are
attributed by their mangled name:
- Rust, legacy (`_ZN<len><segment>...E`): the first path segment is the crate; for a generic
  impl (`<alloc::vec::Vec<T> as core::ops::Drop>`) the first crate path inside it.
- Rust, v0 (`_R...`): the crate root (`C [s<base62>_] <len><name>`) of the first path the
  demangler meets: the impl's path for impls, the self type for `<T as Trait>`.
- Unmangled: `[C/asm]` when the binary contains C objects (a C compiler's `.comment`, or
  symbols that only a C library defines, NO_C_REGEX); then Rust's own unmangled runtime
  names (rust_*, __rust_*, main, origin_main) go to `[Rust, unmangled]` and compiler
  intrinsics (memcpy, __udivti3: compiler-builtins or libgcc/libc) to `[unknown]`. In a
  binary without C, every unmangled symbol is Rust (#[no_mangle] items, compiler-builtins'
  or origin's mem*, origin's `_start`): `[Rust, unmangled]`.
- Anything the demangler cannot read: `[unknown]`.
What no symbol covers (string literals, jump tables, padding) is shown as `[no symbol]`.
"""
import re
import struct
import sys


def read_elf(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{path}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, typ, flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append({"name_off": name, "type": typ, "flags": flags, "off": off,
                         "size": size, "link": link, "entsize": entsize})
    strtab = sections[shstrndx]
    for s in sections:
        s["name"] = cstr(data, strtab["off"] + s["name_off"])
    symbols = []
    for s in sections:
        if s["type"] != 2:  # SHT_SYMTAB
            continue
        names = sections[s["link"]]["off"]
        for j in range(s["size"] // 24):
            name, info, _other, shndx, value, size = struct.unpack_from(
                "<IBBHQQ", data, s["off"] + j * 24)
            if size and 0 < shndx < len(sections) and info & 0xF in (0, 1, 2):
                symbols.append((shndx, value, size, info >> 4, cstr(data, names + name)))
    return sections, symbols


def cstr(data, off):
    return data[off:data.index(b"\0", off)].decode("utf-8", "replace")


# ---- legacy Rust mangling -------------------------------------------------------------
LEGACY_ESCAPES = {"$SP$": "@", "$BP$": "*", "$RF$": "&", "$LT$": "<", "$GT$": ">",
                  "$LP$": "(", "$RP$": ")", "$C$": ","}
PATH_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")


def legacy_crate(sym):
    m = re.match(r"_ZN(\d+)", sym)
    if not m:
        return None
    n, start = int(m.group(1)), m.end()
    seg = sym[start:start + n]
    if len(seg) != n:
        return None
    if not seg.startswith(("$", "_$")):
        return seg
    text = seg[1:] if seg.startswith("_$") else seg
    for k, v in LEGACY_ESCAPES.items():
        text = text.replace(k, v)
    text = re.sub(r"\$u[0-9a-f]+\$", " ", text).replace("..", "::")
    m = PATH_RE.search(text)
    return m.group(1) if m else None


# ---- v0 Rust mangling (https://doc.rust-lang.org/rustc/symbol-mangling/v0.html) -------
class V0:
    """Parses just enough of a v0 symbol to return the crate of its first path."""

    BASIC = set("abcdefhijlmnopstuvxyz")

    def __init__(self, sym):
        self.s, self.i, self.depth = sym, 2, 0  # past "_R"

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self, c=None):
        ch = self.peek()
        if not ch or (c is not None and ch != c):
            raise ValueError(f"expected {c or 'more'} at {self.i}")
        self.i += 1
        return ch

    def eat(self, c):
        if self.peek() == c:
            self.i += 1
            return True
        return False

    def base62(self):
        start = self.i
        while self.peek() and self.peek() != "_":
            self.take()
        self.take("_")
        digits = self.s[start:self.i - 1]
        return int_base62(digits) + 1 if digits else 0

    def decimal(self):
        start = self.i
        if self.peek() == "0":  # "0" stands alone: "00" is two numbers
            self.i += 1
        else:
            while self.peek().isdigit():
                self.i += 1
        if start == self.i:
            raise ValueError(f"expected a number at {self.i}")
        return int(self.s[start:self.i])

    def undisambiguated_ident(self):
        self.eat("u")  # punycode: the name stays encoded
        n = self.decimal()
        self.eat("_")
        name = self.s[self.i:self.i + n]
        if len(name) != n:
            raise ValueError("truncated identifier")
        self.i += n
        return name

    def ident(self):
        if self.eat("s"):
            self.base62()
        return self.undisambiguated_ident()

    def backref(self, parse):
        here = self.i - 1  # the "B"
        pos = self.base62() + 2  # offsets count from after "_R"
        if pos >= here:
            raise ValueError("backref does not point backwards")
        saved, self.i = self.i, pos
        self.depth += 1
        if self.depth > 64:
            raise ValueError("backrefs too deep")
        try:
            return parse()
        finally:
            self.i, self.depth = saved, self.depth - 1

    def path(self):
        """Consumes a path; returns the first crate in it."""
        c = self.take()
        if c == "C":
            return self.ident()
        if c == "N":
            self.take()  # namespace
            crate = self.path()
            self.ident()
            return crate
        if c == "M":
            crate = self.impl_path()
            return first(crate, self.type_())
        if c == "X":
            crate = self.impl_path()
            crate = first(crate, self.type_())
            trait_crate = self.path()
            return crate or trait_crate
        if c == "Y":
            crate = self.type_()
            other = self.path()
            return crate or other
        if c == "I":
            crate = self.path()
            while not self.eat("E"):
                crate = first(crate, self.generic_arg())
                if crate is None and not self.peek():
                    raise ValueError("unterminated generics")
            return crate
        if c == "B":
            return self.backref(self.path)
        raise ValueError(f"unknown path tag {c}")

    def impl_path(self):
        if self.eat("s"):
            self.base62()
        return self.path()

    def generic_arg(self):
        if self.eat("L"):
            self.base62()
            return None
        if self.eat("K"):
            return self.const()
        return self.type_()

    def type_(self):
        c = self.peek()
        if c in self.BASIC:
            self.take()
            return None
        if c in "CNMXYI":
            return self.path()
        self.take()
        if c == "B":
            return self.backref(self.type_)
        if c in "SPO":
            return self.type_()
        if c in "RQ":
            if self.eat("L"):
                self.base62()
            return self.type_()
        if c == "A":
            crate = self.type_()
            self.const()
            return crate
        if c == "T":
            crate = None
            while not self.eat("E"):
                crate = first(crate, self.type_())
            return crate
        if c == "F":
            if self.eat("G"):
                self.base62()
            self.eat("U")
            if self.eat("K"):
                if not self.eat("C"):
                    self.undisambiguated_ident()
            crate = None
            while not self.eat("E"):
                crate = first(crate, self.type_())
            return first(crate, self.type_())
        if c == "D":
            if self.eat("G"):
                self.base62()
            crate = None
            while not self.eat("E"):
                crate = first(crate, self.path())
                while self.eat("p"):
                    self.undisambiguated_ident()
                    crate = first(crate, self.type_())
            self.take("L")
            self.base62()
            return crate
        raise ValueError(f"unknown type tag {c}")

    def const(self):
        c = self.peek()
        if c == "B":
            self.take()
            return self.backref(self.const)
        if c == "p":
            self.take()
            return None
        if c in "RQ":
            self.take()
            return self.const()
        if c in "AT":
            self.take()
            while not self.eat("E"):
                self.const()
            return None
        if c == "V":
            self.take()
            crate = self.path()
            if self.eat("T"):
                while not self.eat("E"):
                    self.const()
            elif self.eat("S"):
                while not self.eat("E"):
                    self.ident()
                    self.const()
            else:
                self.take("U")
            return crate
        self.type_()  # the const's type (an integer, bool, char or str)
        self.eat("n")
        while self.peek() and self.peek() != "_":
            self.take()
        self.take("_")
        return None


def first(crate, other):
    """The crate found first; `other` has been parsed either way."""
    return crate if crate is not None else other


def int_base62(s):
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = 0
    for ch in s:
        n = n * 62 + digits.index(ch)
    return n


def v0_crate(sym):
    p = V0(sym)
    try:
        while p.peek().isdigit():  # encoding version
            p.take()
        return p.path()
    except (ValueError, IndexError):
        # The first crate root that looks like one (C, disambiguator, length, name).
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)_?([A-Za-z_][A-Za-z0-9_]*)", sym[2:])
        if m and len(m.group(2)) >= int(m.group(1)):
            return m.group(2)[:int(m.group(1))]
        return None


RUST_UNMANGLED = re.compile(r"^(rust_|__rust_|__rdl_|__rg_|__rustc)|^(main|origin_main)$")
# Compiler intrinsics by their libgcc/compiler-rt names (__udivti3, __addtf3, __fixdfti,
# __floattidf: operation, machine mode, operand count) and the mem* functions.
INTRINSIC = re.compile(r"^(mem(cpy|move|set|cmp)|bcmp|strlen|__(rust_)?probestack|"
                       r"__(u?(div|mod|divmod|cmp)|add|sub|mul|neg|ashl|ashr|lshr|popcount|clz|ctz|"
                       r"ffs|parity|bswap|fix(uns)?|float(un)?|extend|trunc|powi?|eq|ne|ge|gt|le|"
                       r"lt|unord|mulo|addo|subo)((qi|hi|si|di|ti|sf|df|tf|xf|hf)+)[0-9]?)$")


def classify(name, has_c, no_c):
    base = name.split(".llvm.")[0]
    if base.startswith("_ZN"):
        return legacy_crate(base) or "[unknown]"
    if base.startswith("_R"):
        return v0_crate(base.split(".")[0]) or "[unknown]"  # no "." in v0, only in suffixes
    if not has_c:
        return "[Rust, unmangled]"
    if no_c.search(base):
        return "[C/asm]"
    if RUST_UNMANGLED.search(base):
        return "[Rust, unmangled]"
    if INTRINSIC.search(base):
        return "[unknown]"
    return "[C/asm]"


def main():
    unstripped, stripped, no_c_regex = sys.argv[1:4]
    no_c = re.compile(no_c_regex)
    sections, symbols = read_elf(unstripped)
    data = open(unstripped, "rb").read()

    def kind(sec):
        if sec["type"] != 1 or not sec["flags"] & 2:  # PROGBITS, ALLOC
            return None
        if sec["flags"] & 4:  # EXECINSTR
            return "text"
        if sec["name"].startswith((".rodata", ".data.rel.ro")):
            return "rodata"
        return None

    comment = next((s for s in sections if s["name"] == ".comment"), None)
    comment_text = data[comment["off"]:comment["off"] + comment["size"]] if comment else b""
    has_c = bool(re.search(rb"GCC: |clang version ", comment_text)) or any(
        no_c.search(name) for *_, name in symbols)

    # One symbol per address: the largest; on a tie a Rust name, then a global one.
    best = {}
    for shndx, value, size, bind, name in symbols:
        k = kind(sections[shndx])
        if k is None:
            continue
        rank = (size, name.startswith(("_ZN", "_R")), bind == 1)
        key = (shndx, value)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, k, size, name)

    sizes = {}
    covered = {"text": 0, "rodata": 0}
    for _, k, size, name in best.values():
        crate = classify(name, has_c, no_c)
        row = sizes.setdefault(crate, {"text": 0, "rodata": 0})
        row[k] += size
        covered[k] += size
    section_total = {"text": 0, "rodata": 0}
    for s in sections:
        k = kind(s)
        if k:
            section_total[k] += s["size"]
    gap = {k: max(0, section_total[k] - covered[k]) for k in covered}
    if gap["text"] or gap["rodata"]:
        sizes["[no symbol]"] = gap

    total = section_total["text"] + section_total["rodata"]
    file_size = len(open(stripped, "rb").read())
    rows = sorted(sizes.items(), key=lambda kv: -(kv[1]["text"] + kv[1]["rodata"]))
    rust_crates = [c for c in sizes if not c.startswith("[")]
    print(f"size by crate (symbols of the unstripped build; {len(rust_crates)} Rust crates with code)")
    print()
    print("| crate | .text | .rodata | total | share |")
    print("|---|---:|---:|---:|---:|")
    for crate, r in rows:
        t = r["text"] + r["rodata"]
        print(f"| {crate} | {r['text']} | {r['rodata']} | {t} | {100 * t / total:.1f}% |")
    print(f"| **.text + .rodata** | **{section_total['text']}** | **{section_total['rodata']}** "
          f"| **{total}** | 100% |")
    print()
    other = {}
    for s in sections:
        if s["flags"] & 2 and s["type"] != 8 and not kind(s):  # ALLOC, not NOBITS
            group = ("unwind tables (.eh_frame*, .gcc_except_table)"
                     if s["name"].startswith((".eh_frame", ".gcc_except_table"))
                     else "relocations (.rela*)" if s["name"].startswith(".rela")
                     else "other (data, ELF headers, notes, got)")
            other[group] = other.get(group, 0) + s["size"]
    for group, size in sorted(other.items(), key=lambda kv: -kv[1]):
        print(f"  {group}: {size} bytes")
    print(f"  file size (stripped, as shipped): {file_size} bytes ({file_size / 1024:.1f} KiB)")
    print("  (.rodata counts .rodata* and .data.rel.ro*; [no symbol]: literals, tables, padding)")


if __name__ == "__main__":
    main()
