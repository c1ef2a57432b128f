"""The README's distributed mode, run as a user runs it (issue 9): the shell block of its
"Distributed mode" section, line by line with bash, on PostgreSQL and Redis, then a call with
audio both ways through the processes `honcho start` runs, /healthz 200, and SIGTERM to
honcho: the call is hung up, its record completed, every process ends, and honcho reports each
program's own exit (0), not that of a shell around it.

The lines run as written, from a temporary directory holding symlinks to every file of the
checkout (manage.py, the Procfile, the packages, .venv...), so that what they create (`.env`,
`var/`, the collected static files) lands there and never in the repository. What is changed,
and why, is only this:

- `make setup` is skipped: the test runs in the venv it would create.
- The `.env` line writes the same two URLs, but the database's name is a throwaway one
  (`centralino_doc_<random>`, the same name in the `createdb` line, dropped at the end) and
  Redis's database is the tests' one (as every integration test: a developer's data in
  database 0 is never touched). Lines appended to `.env` then set, with variables the README's
  settings table documents: free ports for the web, SIP and RTP (CENTRALINO_HTTP_PORT,
  CENTRALINO_SIP_PORT, CENTRALINO_RTP_PORTS), a node of its own (CENTRALINO_NODE: its queue is
  no other run's), and CENTRALINO_VAR / STATIC_ROOT in the temporary directory (the settings
  find var/ and staticfiles/ next to the code, which the symlinks lead back to the checkout).
- The environment is a user's shell: no DATABASE_URL, REDIS_URL or CENTRALINO_* inherited,
  and the venv's bin/ not on PATH (the lines name `.venv/bin/...` themselves).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.waiting import wait_for
from tests.integration.processes import (
    HOST,
    POSTGRES_ADMIN_URL,
    ROOT,
    Child,
    base_env,
    http_get,
    sip_options,
    skip_loudly,
)

pytestmark = pytest.mark.integration

# What the symlinked copy leaves out: what the README's lines create, and the repository's own.
NOT_LINKED = {".env", "var", "staticfiles", ".git"}
STOP_TIMEOUT = 30.0
PROCESSES = ("web", "telephony", "worker", "beat")  # the Procfile's


def documented_lines() -> list[str]:
    """The command lines of the first ```sh block after README.md's "Distributed mode"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Distributed mode\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md's Distributed mode has no ```sh block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def substituted(line: str, database: str, redis_url: str) -> str:
    """`line` with the throwaway database and the tests' Redis database (the only changes)."""
    if line.startswith("printf ") and "> .env" in line:
        changed = re.sub(
            r"(DATABASE_URL=postgresql://[^\s\\']+/)centralino\\n", rf"\g<1>{database}\\n", line
        )
        changed = re.sub(
            r"REDIS_URL=redis://127\.0\.0\.1:6379/0\\n", rf"REDIS_URL={redis_url}\\n", changed
        )
        assert changed.count(database) == 1 and redis_url in changed, (
            f"unexpected .env line: {line}"
        )
        return changed
    if line.startswith("createdb "):
        assert line.endswith(" centralino"), f"unexpected createdb line: {line}"
        return line.removesuffix(" centralino") + f" {database}"
    return line


def linked_checkout(directory: Path) -> Path:
    """A new `directory` with a symlink to each entry of the checkout but NOT_LINKED."""
    directory.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            (directory / entry.name).symlink_to(entry)
    return directory


def user_environment(tmp_path: Path) -> dict[str, str]:
    """A user's shell: nothing of ours inherited, the venv not on PATH."""
    env = base_env(tmp_path)
    for name in [k for k in env if k.startswith("CENTRALINO_")] + ["DJANGO_SETTINGS_MODULE"]:
        env.pop(name)
    env.pop("VIRTUAL_ENV", None)
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if p and p != venv_bin)
    return env


def repository_env() -> tuple[float, int] | None:
    """The repository's own .env (its time and size), which the test must leave alone."""
    path = ROOT / ".env"
    return (path.stat().st_mtime, path.stat().st_size) if path.exists() else None


def process_tree(pid: int) -> set[int]:
    """`pid` and every process descending from it, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended: it only waits for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Tree(Child):
    """A process and what it started (honcho starts each process in a session of its own:
    killing its group is not enough), as far as `processes()` has seen."""

    seen: set[int] = field(default_factory=set)

    def processes(self) -> set[int]:
        """Every process of the tree seen so far, this one included."""
        self.seen |= process_tree(self.process.pid)
        return self.seen


@contextlib.contextmanager
def started_in(workdir: Path, line: str, env: dict[str, str], log: Path) -> Iterator[Tree]:
    """`line` run by bash in `workdir`; whatever it started and still runs is killed at the end."""
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", line],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tree = Tree(process, log)
    try:
        yield tree
    finally:
        for pid in tree.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


@dataclass
class Throwaway:
    """The database the README's createdb line creates, dropped at the end."""

    name: str
    url: str

    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def throwaway_database() -> Iterator[Throwaway]:
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as error:
        skip_loudly(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {error}")
    name = f"centralino_doc_{uuid.uuid4().hex[:10]}"
    with admin:
        try:
            yield Throwaway(name, f"postgresql://postgres@127.0.0.1:5432/{name}")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_readme_distributed_commands_carry_a_call_with_audio(
    throwaway_database: Throwaway,
    redis_url: str,
    tmp_path: Path,
    make_baresip: Callable[..., Baresip],
) -> None:
    if baresip_binary() is None:
        skip_loudly("baresip (baresip-core) is not installed: no call through the README's mode")
    lines = documented_lines()
    assert lines[0] == "make setup" and lines[-1] == ".venv/bin/honcho start", lines
    workdir = linked_checkout(tmp_path / "centralino")
    env_before = repository_env()
    env = user_environment(tmp_path)
    http_port, sip_port, rtp = free_port_range(1), free_port_range(1), free_port_range(20)
    node = f"doc{uuid.uuid4().hex[:8]}"
    appended = {
        "CENTRALINO_HTTP_PORT": http_port,
        "CENTRALINO_SIP_PORT": sip_port,
        "CENTRALINO_RTP_PORTS": f"{rtp}-{rtp + 19}",
        "CENTRALINO_NODE": node,
        "CENTRALINO_VAR": workdir / "var",
        "STATIC_ROOT": workdir / "staticfiles",
    }

    for line in lines[1:-1]:
        command = substituted(line, throwaway_database.name, redis_url)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if "> .env" in command:
            with (workdir / ".env").open("a") as dotenv:
                dotenv.writelines(f"{name}={value}\n" for name, value in appended.items())
    assert (workdir / ".env").is_file() and (workdir / "var").is_dir()
    credentials = json.loads((workdir / "var" / "demo_credentials.json").read_text())

    with started_in(workdir, lines[-1], env, tmp_path / "honcho.log") as honcho:
        honcho.wait_until(lambda: sip_options(sip_port) is not None, "telephony (SIP)")
        honcho.wait_until(lambda: http_get(http_port, "/healthz")[0] == 200, "web (/healthz)")
        for name in PROCESSES:
            honcho.wait_until(lambda n=name: f"{n}.1 started" in honcho.output(), f"{name}")
        honcho.processes()

        registrar = f"{HOST}:{sip_port}"
        secrets = credentials["secrets"]
        caller = make_baresip("201", password=secrets["201"], registrar=registrar, tone_hz=440)
        callee = make_baresip("202", password=secrets["202"], registrar=registrar, tone_hz=1000)
        caller.wait_registered()
        callee.wait_registered()
        caller.dial("202")
        callee.wait_established()
        caller.wait_established()
        callee.wait_hearing(440)
        caller.wait_hearing(1000)
        status, body = http_get(http_port, "/healthz")
        assert status == 200, body
        assert json.loads(body)["engine"]["node"] == node

        # Stopped as honcho stops (Ctrl-C, SIGTERM): the worker hangs up its call first.
        processes = honcho.processes()
        stopping = time.monotonic()
        code = honcho.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        callee.wait_closed()
        caller.wait_closed()
        wait_for(
            lambda: not any(alive(pid) for pid in processes),
            STOP_TIMEOUT,
            what="every process honcho started to end",
            seen=lambda: sorted(pid for pid in processes if alive(pid)),
        )
    print(f"\nhoncho and its processes ended {time.monotonic() - stopping:.2f} s after SIGTERM")
    output = honcho.output()
    assert code is not None, f"honcho did not stop:\n{output}"
    for name in PROCESSES:  # each its own program, not a shell around it, stopped cleanly
        assert f"{name}.1 stopped (rc=0)" in output, output
    [(ended_at, disposition)] = throwaway_database.query(
        "SELECT ended_at, disposition FROM stats_callrecord"
    )
    assert ended_at is not None and disposition == "answered", disposition
    [(stopped,)] = throwaway_database.query(
        "SELECT stopped_at FROM pbx_nodeheartbeat WHERE node = %s", node
    )
    assert stopped is not None, "the engine's clean stop did not mark its node stopped"
    assert repository_env() == env_before, "the README's lines touched the repository's .env"
