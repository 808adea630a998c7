#!/usr/bin/env python3
"""strom connect throughput (a benchmark, not a test): file source -> topic, and
topic -> PostgreSQL sink (insert mode), on a single-node broker and a private PostgreSQL
started here. Prints records/s per run and the median.

    scripts/bench_connect.py [--strom target/release/strom] [--lines 500000] [--runs 3]
"""
import argparse, json, os, pathlib, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, check, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out: {what}")


def rest(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strom", default="target/release/strom")
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    # A SIGTERM (timeout) still runs the cleanup below: broker, worker and PostgreSQL stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    strom = os.path.abspath(args.strom)
    work = pathlib.Path(tempfile.mkdtemp(prefix="strom-connect-bench-"))
    procs = []
    pg = None
    try:
        kafka = free_port()
        procs.append(subprocess.Popen([strom, "broker", "--set", f"log.dirs={work}/data", "--set",
                                       f"listeners=PLAINTEXT://127.0.0.1:{kafka}", "--set", "http.listener=127.0.0.1:0",
                                       "--set", "group.initial.rebalance.delay.ms=0"],
                                      stdout=subprocess.DEVNULL, stderr=open(work / "broker.log", "w")))
        wait("broker", lambda: socket.socket().connect_ex(("127.0.0.1", kafka)) == 0)
        bins = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if bins:
            pgbin = bins[-1].parent
            root = os.geteuid() == 0
            prefix = ["runuser", "-u", "postgres", "--"] if root else []
            if root:
                shutil.chown(work, "postgres")
            pg = free_port()
            subprocess.run(prefix + [str(pgbin / "initdb"), "-A", "trust", "-U", "postgres", "--no-sync", "-D", str(work / "pg")],
                           check=True, stdout=subprocess.DEVNULL)
            subprocess.run(prefix + [str(pgbin / "pg_ctl"), "-w", "-o", f"-p {pg} -k {work} -c listen_addresses=127.0.0.1",
                                     "-l", str(work / "pg.log"), "-D", str(work / "pg"), "start"], check=True, stdout=subprocess.DEVNULL)
        rest_port = free_port()
        (work / "worker.properties").write_text(
            f"bootstrap.servers=127.0.0.1:{kafka}\ngroup.id=bench\nlisteners=http://127.0.0.1:{rest_port}\n"
            "replication.factor=1\noffset.storage.partitions=1\nstatus.storage.partitions=1\n")
        procs.append(subprocess.Popen([strom, "connect", "distributed", "--config", str(work / "worker.properties")],
                                      stdout=subprocess.DEVNULL, stderr=open(work / "worker.log", "w")))
        wait("worker", lambda: socket.socket().connect_ex(("127.0.0.1", rest_port)) == 0)
        source_rates, sink_rates = [], []
        for run in range(args.runs):
            data = work / f"in-{run}.txt"
            with open(data, "w") as f:
                for i in range(args.lines):
                    f.write(json.dumps({"id": i, "item": f"item-{i}", "price": i * 0.5}) + "\n")
            size = data.stat().st_size
            start = time.time()
            rest(rest_port, "POST", "/connectors", {"name": f"src-{run}", "config": {
                "connector.class": "FileStreamSource", "file": str(data), "topic": f"bench-{run}"}})
            wait("source done", lambda: any(o["offset"].get("position") == size for o in
                                            rest(rest_port, "GET", f"/connectors/src-{run}/offsets")["offsets"]))
            rate = args.lines / (time.time() - start)
            source_rates.append(rate)
            print(f"run {run}: file source -> topic {rate:,.0f} records/s")
            if pg:
                start = time.time()
                rest(rest_port, "POST", "/connectors", {"name": f"pg-{run}", "config": {
                    "connector.class": "PostgresSink", "topics": f"bench-{run}", "auto.create": "true",
                    "connection.url": f"jdbc:postgresql://127.0.0.1:{pg}/postgres", "table.name.format": f"bench_{run}"}})
                def done():
                    out = subprocess.run([str(pgbin / "psql"), "-h", "127.0.0.1", "-p", str(pg), "-U", "postgres", "-At", "-c",
                                          f"SELECT count(*) FROM bench_{run}"], capture_output=True, text=True)
                    return out.returncode == 0 and int(out.stdout.strip() or 0) >= args.lines
                wait("sink done", done)
                rate = args.lines / (time.time() - start)
                sink_rates.append(rate)
                print(f"run {run}: topic -> PostgreSQL sink {rate:,.0f} records/s")
        print(f"median file source -> topic: {statistics.median(source_rates):,.0f} records/s ({args.runs} runs, {args.lines} records)")
        if sink_rates:
            print(f"median topic -> PostgreSQL: {statistics.median(sink_rates):,.0f} records/s")
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()
        if pg:
            subprocess.run(prefix + [str(pgbin / "pg_ctl"), "-m", "immediate", "-D", str(work / "pg"), "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
