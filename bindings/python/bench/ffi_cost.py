"""The Python half of `cargo bench -p weft-ffi --bench ffi_cost`: the same changes and reads
as the Rust half, through the installed `weft` package. Prints one JSON object."""

import asyncio
import json
import os
import sys
import tempfile
import time

import weft
from weft import Value


async def changes(repo, count):
    doc = await repo.create()
    start = time.perf_counter()
    for n in range(count):
        await doc.put("/n", Value.INT(n))
    elapsed = time.perf_counter() - start
    assert doc.get("/n") == Value.INT(count - 1)
    return elapsed / count


def reads(doc, count):
    start = time.perf_counter()
    for _ in range(count):
        doc.get("/n")
    return (time.perf_counter() - start) / count


async def main(change_count, read_count):
    memory = weft.Repo.in_memory()
    in_memory = await changes(memory, change_count)
    doc = await memory.create()
    await doc.put("/n", Value.INT(1))
    read = reads(doc, read_count)
    with tempfile.TemporaryDirectory(dir=os.environ.get("WEFT_BENCH_DIR")) as folder:
        durable_repo = await weft.Repo.open(os.path.join(folder, "bench.db"))
        durable = await changes(durable_repo, change_count)
        await durable_repo.shutdown()
    print(json.dumps({
        "version": weft.version(),
        "python": sys.version.split()[0],
        "change_in_memory_s": in_memory,
        "change_sqlite_s": durable,
        "read_s": read,
    }))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
