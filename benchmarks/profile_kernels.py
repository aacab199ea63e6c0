"""Where a training program's CPU time goes: kernel by kernel, and fusion by fusion.

With every training loop compiled into one kernel (``fibjax.training.runtime.xla_flags``), a
profiler sees one anonymous block of generated code for the whole epoch. This script compiles
``fibjax.training.seeds.compile_seeds`` with XLA's dump switched on, calls it in a loop while ``perf
record`` samples its own process, and attributes every sample in generated code to the kernel of
the dump whose machine code lies at that address (found by reading the process's memory while it
is still alive). With ``llvmlite`` installed (not a dependency of fibjax), it also names the XLA
fusion each sample falls in: it recompiles the kernel's dumped LLVM IR with a marker at the start
of every basic block (the blocks carry the fusions' names) and aligns that code with XLA's own by
instruction sequence. The alignment is approximate (llvmlite's LLVM is not XLA's), so read the
fusion shares as a map, and check a large one by an experiment that changes it.

Usage: ``python benchmarks/profile_kernels.py [--model vanilla] [--seeds 256] [--seconds 6]``.
Needs Linux, ``perf`` (allowed to sample this process) and ``objdump``. Not a test.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vanilla")
    parser.add_argument("--cell", default="simple")
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per call")
    parser.add_argument("--seconds", type=float, default=6.0, help="sampling time")
    parser.add_argument("--frequency", type=int, default=3999, help="samples per second")
    parser.add_argument("--top", type=int, default=25, help="fusions listed")
    parser.add_argument("--dump", type=Path, default=None, help="keep XLA's dump here")
    return parser.parse_args()


def sample(seconds: float, frequency: int, data: Path) -> list[tuple[int, str]]:
    """``(address, object)`` of every ``perf`` sample of this process over ``seconds``."""
    record = ["perf", "record", "-F", str(frequency), "-p", str(os.getpid()), "-o", str(data)]
    subprocess.run([*record, "--", "sleep", str(seconds)], capture_output=True, check=True)
    script = ["perf", "script", "-i", str(data), "-F", "ip,dso"]
    lines = subprocess.run(script, capture_output=True, text=True, check=True).stdout
    return [
        (int(p[0], 16), p[1] if len(p) > 1 else "?")
        for p in map(str.split, lines.splitlines())
        if p
    ]


def kernel_code(dump: Path) -> dict[str, bytes]:
    """The machine code of every kernel XLA dumped for the training program, by kernel name."""
    code = {}
    for obj in dump.glob("*jit_train_seeds.obj-file.*.o"):
        headers = subprocess.run(["objdump", "-h", str(obj)], capture_output=True, text=True)
        pattern = r"\s\d+ \.l?text\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)"
        for size, offset in re.findall(pattern, headers.stdout):
            if int(size, 16):
                start = int(offset, 16)
                code[obj.name.split("obj-file.")[1]] = obj.read_bytes()[
                    start : start + int(size, 16)
                ]
    return code


def locate(
    addresses: collections.Counter, code: dict[str, bytes]
) -> dict[str, collections.Counter]:
    """Samples per kernel and offset: each kernel found in this process's memory by its code."""
    memory = os.open("/proc/self/mem", os.O_RDONLY)
    mappings = _mappings()  # read once: nothing is mapped or unmapped while the samples are read
    found: dict[int, tuple[str, int]] = {}  # start address -> (kernel, size)
    per_kernel: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    try:
        for address, count in addresses.most_common():
            hit = next(((s, n) for s, (n, size) in found.items() if s <= address < s + size), None)
            if hit is None:
                hit = _search(memory, address, code, mappings)
                if hit is not None:
                    found[hit[0]] = (hit[1], len(code[hit[1]]))
            name, offset = (hit[1], address - hit[0]) if hit else ("(not found)", 0)
            per_kernel[name][offset] += count
    finally:
        os.close(memory)
    return per_kernel


def _mappings() -> list[tuple[int, int]]:
    """The start and end of each of this process's memory mappings."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return [tuple(int(part, 16) for part in line.split()[0].split("-")) for line in lines]


def _search(
    memory: int, address: int, code: dict[str, bytes], mappings: list[tuple[int, int]]
) -> tuple[int, str] | None:
    # Read within the address's own mapping: a read that runs into unmapped memory fails whole
    # (a large kernel near the start of its mapping was never found that way).
    start, end = next(((s, e) for s, e in mappings if s <= address < e), (address, address + 1))
    for name, text in code.items():
        if len(text) < 32:
            continue
        low = max(address - len(text), start)
        try:
            window = os.pread(memory, min(len(text) + 32, end - low), low)
        except OSError:
            continue
        # The first bytes of a kernel hold no relocated constants: a prologue.
        at = window.find(text[:32])
        if at >= 0 and low + at <= address < low + at + len(text):
            return low + at, name
    return None


def _instructions(disassembly: str) -> tuple[list[str], list[int]]:
    mnemonics, offsets = [], []
    for offset, rest in re.findall(r"^\s+([0-9a-f]+):\s+(.*)$", disassembly, re.M):
        if rest and "nop" not in rest:
            mnemonics.append(rest.split()[0])
            offsets.append(int(offset, 16))
    return mnemonics, offsets


def _portable_ir(ir: str) -> str:
    """XLA's LLVM IR in a syntax an older LLVM reads (float constants as hexadecimal doubles)."""

    def as_double(value: float) -> str:
        return f"0x{struct.unpack('<Q', struct.pack('<d', value))[0]:016X}"

    def decimal(match: re.Match) -> str:
        value = struct.unpack("<f", struct.pack("<f", float(match.group(2))))[0]
        return match.group(1) + as_double(value)

    def single(match: re.Match) -> str:
        return as_double(struct.unpack("<f", bytes.fromhex(match.group(1))[::-1])[0])

    ir = re.sub(r"((?:float |, |\(|<)(?:float )?)(-?\d+\.\d+e[+-]\d+)", decimal, ir)
    ir = re.sub(r"\bf0x([0-9A-Fa-f]{8})\b", single, ir)
    return ir.replace("float +inf", f"float {as_double(float('inf'))}").replace(
        "float -inf", f"float {as_double(float('-inf'))}"
    )


def _marked(ir: str) -> str:
    """The IR with an assembly comment naming each basic block at its start (after its PHIs)."""
    out, pending = [], None
    for line in ir.splitlines():
        if pending is not None and not re.match(r"^\s+%[\w.\-]+ = phi ", line):
            out.append(f'  call void asm sideeffect "# BLOCK {pending}", ""()')
            pending = None
        out.append(line)
        label = re.match(r"^([A-Za-z_.$][\w.$\-]*):", line)
        pending = label.group(1) if label else pending
    return "\n".join(out)


def fusion_of_offsets(
    kernel: str, dump: Path, xla_object: Path
) -> tuple[dict[int, str], float] | None:
    """The fusion each instruction of a kernel belongs to, and the share of instructions aligned.

    ``None`` without llvmlite.
    """
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return None
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    ir_file = next(dump.glob(f"*jit_train_seeds.{kernel.removesuffix('.o')}.ir-with-opt.ll"))
    ir = _portable_ir(ir_file.read_text())
    module = llvm.parse_assembly(_marked(ir))
    machine = llvm.Target.from_triple(module.triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        codemodel="large",
    )
    names, block = [], "?"
    for line in machine.emit_assembly(module).splitlines():
        text = line.strip()
        if "# BLOCK " in text:
            block = text.split("# BLOCK ")[1]
        elif text and not text.startswith((".", "#", "nop")) and not re.match(r"^[\w.$]+:", text):
            names.append(block)
    with tempfile.NamedTemporaryFile(suffix=".o") as obj:
        obj.write(machine.emit_object(module))
        obj.flush()
        ours, _ = _instructions(_disassemble(Path(obj.name)))
    theirs, offsets = _instructions(_disassemble(xla_object))
    owner = [None] * len(theirs)
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            owner[b + k] = names[a + k] if a + k < len(names) else "?"
    aligned = sum(name is not None for name in owner) / max(len(owner), 1)
    return _fusion_names(dict(zip(offsets, _fill(owner), strict=True)), ir), aligned


def _disassemble(obj: Path) -> str:
    command = ["objdump", "-d", "--no-show-raw-insn", "-j", ".ltext", "-j", ".text", str(obj)]
    return subprocess.run(command, capture_output=True, text=True).stdout


def _fill(owner: list[str | None]) -> list[str]:
    last, out = "?", []
    for name in owner:
        last = name or last
        out.append(last)
    return out


def _fusion_names(blocks: dict[int, str], ir: str) -> dict[int, str]:
    """Block names → fusion names; LLVM's vector loops traced back to the loop they came from."""
    predecessors = {
        m.group(1): re.findall(r"%([\w.$\-]+)", m.group(2) or "")
        for m in re.finditer(r"^([A-Za-z_.$][\w.$\-]*):\s*(?:;\s*preds = (.*))?$", ir, re.M)
    }
    made_by_llvm = ("vector.", "middle.block", "scalar.ph", "pred.", "vec.epilog", "iter.check")

    def origin(block: str, depth: int = 0) -> str:
        if not block.startswith(made_by_llvm) or depth > 8:
            return block
        for p in predecessors.get(block, []):
            found = origin(p, depth + 1) if p != block else p
            if not found.startswith(made_by_llvm):
                return found
        return block

    def fusion(block: str) -> str:
        name = re.sub(
            r"\.(kLoop_fusion|loop_|inner|lr\.|preheader|split|exit|us\b|reduction).*", "", block
        )
        return re.sub(r"(\.i)+$", "", name)

    return {offset: fusion(origin(block)) for offset, block in blocks.items()}


def main() -> int:
    args = parse_args()
    dump = args.dump or Path(tempfile.mkdtemp(prefix="fibjax-xla-dump-"))
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import fibjax

    fibjax.configure(no_cache=True)
    import jax

    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig
    from fibjax.training.seeds import compile_seeds

    config = TrainConfig(args.model, epochs=args.epochs, cell=args.cell)
    run = compile_seeds(config, fibonacci_windows(), range(args.seeds))
    jax.block_until_ready(run())
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            jax.block_until_ready(run())

    worker = threading.Thread(target=train)
    worker.start()
    time.sleep(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        samples = sample(args.seconds, args.frequency, Path(tmp) / "perf.data")
    stop.set()
    worker.join()
    report(samples, dump, args.top)
    return 0


def report(samples: list[tuple[int, str]], dump: Path, top: int) -> None:
    total = len(samples)
    by_object = collections.Counter(Path(dso.strip("()")).name for _, dso in samples)
    print(f"{total} samples; by object:")
    for name, count in by_object.most_common(6):
        print(f"  {100 * count / total:5.1f}%  {name}")
    generated = collections.Counter(ip for ip, dso in samples if "perf-" in dso or "unknown" in dso)
    per_kernel = locate(generated, kernel_code(dump))
    print("generated code, by kernel:")
    ranked = sorted(per_kernel.items(), key=lambda item: -sum(item[1].values()))
    for name, offsets in ranked[:6]:
        print(f"  {100 * sum(offsets.values()) / total:5.1f}%  {name}")
    kernel, offsets = ranked[0]
    xla_object = next(dump.glob(f"*jit_train_seeds.obj-file.{kernel}"), None)
    named = fusion_of_offsets(kernel, dump, xla_object) if xla_object else None
    if named is None:
        print("(install llvmlite to name the fusions inside a kernel)")
        return
    names, aligned = named
    by_fusion = collections.Counter()
    for offset, count in offsets.items():
        by_fusion[names.get(offset, "?")] += count
    print(
        f"inside {kernel}, by fusion (XLA's names; {100 * aligned:.0f}% of instructions aligned):"
    )
    for name, count in by_fusion.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    sys.exit(main())
