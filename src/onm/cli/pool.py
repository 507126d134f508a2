"""`onm pool`: several nodes of a network behind one virtual IP (seed 0's alternative
destinations), selected per requester and health-checked.

Refs: NAME (unambiguous, or with --network), NETWORK/NAME (where NETWORK may be TENANT/NAME),
or an id. Members are nodes of the pool's network, named as `onm node` names them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from onm.api.schemas import PoolDetail
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, fail, session
from onm.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True, help="Pools: nodes sharing one virtual IP.")
member_app = typer.Typer(no_args_is_help=True, help="A pool's members.")
app.add_typer(member_app, name="member")

Ref = Annotated[str, typer.Argument(help="Pool name, NETWORK/NAME, or id.", show_default=False)]
InNetwork = Annotated[
    str | None, typer.Option("--network", help="The pool's network (name, TENANT/NAME or id).")
]
Policy = Annotated[
    str | None,
    typer.Option(
        help="nearest | least-loaded | round-robin | random | hash | sticky | ranked "
        "[default for a new pool: nearest]"
    ),
]
Scope = Annotated[
    str | None, typer.Option(help="requester | host: whom one choice is for [new: requester]")
]
AllDown = Annotated[
    str | None,
    typer.Option(
        "--all-down", help="fail-closed | fail-open: with no healthy member [new: fail-closed]"
    ),
]
Check = Annotated[
    str | None,
    typer.Option(
        help="icmp | tcp:PORT | http:PORT/PATH | none (passive only) [new: icmp]",
        show_default=False,
    ),
]
On = Annotated[
    str | None,
    typer.Option(
        "--on", help='An action\'s criterion, e.g. "healthy<2" (with --webhook or --run).'
    ),
]
Webhook = Annotated[str | None, typer.Option(help="With --on: POST a JSON body to this URL.")]
Secret = Annotated[
    str | None, typer.Option(help="With --webhook: sign the body (X-Onm-Signature: sha256=...).")
]
RunCommand = Annotated[
    str | None, typer.Option("--run", help="With --on: run this command on the manager's host.")
]
Interval = Annotated[float | None, typer.Option(help="Seconds between checks [new: 1].")]
Timeout = Annotated[float | None, typer.Option(help="Seconds a check may take [new: 1].")]
Rise = Annotated[int | None, typer.Option(help="Passes in a row that make a member up [new: 2].")]
Fall = Annotated[int | None, typer.Option(help="Failures in a row that make it down [new: 2].")]
RotatePackets = Annotated[
    int | None, typer.Option("--rotate-packets", help="ranked: next member after N packets.")
]
RotateSeconds = Annotated[
    float | None, typer.Option("--rotate-seconds", help="ranked: next member after T seconds.")
]


def parse_check(text: str) -> dict[str, object]:
    """`icmp`, `none`, `tcp:5432`, `http:8080/healthz` -> the check's kind, port and path."""
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind in ("icmp", "none"):
        if rest:
            raise InvalidInputError("check", f"a {kind} check takes no port: {text!r}")
        return {"kind": kind}
    if kind not in ("tcp", "http"):
        raise InvalidInputError("check", f"{text!r}: the kind is icmp, tcp, http or none")
    port_text, slash, path = rest.partition("/")
    if not port_text.isdigit():
        raise InvalidInputError(
            "check", f"{text!r}: write {kind}:PORT" + ("/PATH" if kind == "http" else "")
        )
    check: dict[str, object] = {"kind": kind, "port": int(port_text)}
    if kind == "tcp" and slash:
        raise InvalidInputError("check", f"a tcp check takes no path: {text!r}")
    if kind == "http":
        check["path"] = "/" + path
    return check


def settings(
    policy: str | None,
    scope: str | None,
    all_down: str | None,
    check: str | None,
    interval: float | None,
    timeout: float | None,
    rise: int | None,
    fall: int | None,
    rotate_packets: int | None = None,
    rotate_seconds: float | None = None,
) -> dict[str, object]:
    """The settings the options give (left-out ones are not sent: the manager keeps them)."""
    given: dict[str, object] = {
        k: v
        for k, v in (
            ("policy", policy),
            ("scope", scope),
            ("all_down", all_down),
            ("rotate_packets", rotate_packets),
            ("rotate_seconds", rotate_seconds),
        )
        if v is not None
    }
    probe: dict[str, object] = parse_check(check) if check is not None else {}
    for k, v in (("interval", interval), ("timeout", timeout), ("rise", rise), ("fall", fall)):
        if v is not None:
            probe[k] = v
    if probe:
        given["check"] = probe
    return given


def action(
    on: str | None, webhook: str | None, run: str | None, secret: str | None
) -> dict[str, object] | None:
    """The action the options describe (None: none)."""
    if on is None:
        if webhook or run or secret:
            raise InvalidInputError("on", "give the action's criterion with --on, e.g. healthy<2")
        return None
    found: dict[str, object] = {"on": on}
    for key, value in (("webhook", webhook), ("run", run), ("secret", secret)):
        if value is not None:
            found[key] = value
    return found


def describe_check(pool: PoolDetail) -> str:
    c = pool.check
    where = {"tcp": f":{c.port}", "http": f":{c.port}{c.path}"}.get(c.kind, "")
    timing = f"every {c.interval:g}s, timeout {c.timeout:g}s, rise {c.rise}, fall {c.fall}"
    return f"{c.kind}{where} ({timing})" if c.kind != "none" else "none (passive only)"


def show_pool(pool: PoolDetail) -> None:
    rotation = [
        f"{pool.rotation.packets} packets" if pool.rotation.packets else "",
        f"{pool.rotation.seconds:g} s" if pool.rotation.seconds else "",
    ]
    out.print_fields(
        [
            ("name", pool.name),
            ("id", pool.id),
            ("network", pool.network),
            ("ip", pool.ip),
            ("mac", pool.mac),
            ("state", pool.state),
            ("policy", pool.policy),
            ("scope", pool.scope),
            ("all down", pool.all_down),
            ("check", describe_check(pool)),
            ("rotate after", " or ".join(r for r in rotation if r) or "never"),
            ("created", out.when(pool.created_at)),
        ]
    )
    grid = out.table("MEMBER", "RANK", "HEALTH", "SINCE", "REPORTED", "LOAD", "SELECTIONS")
    for m in pool.members:
        style = None if m.health == "up" else "yellow"
        cells = [m.node, m.rank, m.health, out.when(m.since), out.when(m.reported_at)]
        out.add_row(grid, [*cells, f"{m.load:g}", m.selections], style)
    out.print_table(grid, "no members yet: `onm pool member add POOL NODE`")
    for a in pool.actions:
        signed = ", signed" if a.signed else ""
        out.print_line(f"on {a.on}: {a.kind} {a.target}{signed}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Pool name (unique in its network).")],
    network: Annotated[
        str, typer.Option(help="Network (name, TENANT/NAME or id).", show_default=False)
    ],
    ip: Annotated[
        str,
        typer.Option(
            help="The pool's IPv4 address: in the network, no node's.", show_default=False
        ),
    ],
    policy: Policy = None,
    scope: Scope = None,
    all_down: AllDown = None,
    check: Check = None,
    interval: Interval = None,
    timeout: Timeout = None,
    rise: Rise = None,
    fall: Fall = None,
    rotate_packets: RotatePackets = None,
    rotate_seconds: RotateSeconds = None,
    member: Annotated[
        list[str] | None, typer.Option(help="A member node (repeat for several).")
    ] = None,
    on: On = None,
    webhook: Webhook = None,
    run: RunCommand = None,
    secret: Secret = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a pool (members may follow with `onm pool member add`)."""
    s = session(ctx, url, token, json)
    given = settings(
        policy,
        scope,
        all_down,
        check,
        interval,
        timeout,
        rise,
        fall,
        rotate_packets,
        rotate_seconds,
    )
    added = action(on, webhook, run, secret)
    if added is not None:
        given["actions"] = [added]
    pool = s.client.create_pool(name, network, ip, given, member or [])
    if s.json:
        out.print_json(pool)
        return
    out.print_line(f"created pool {pool.name} ({pool.id}) on {pool.ip}")
    show_pool(pool)


@app.command("set")
def set_(
    ctx: typer.Context,
    ref: Ref,
    policy: Policy = None,
    scope: Scope = None,
    all_down: AllDown = None,
    check: Check = None,
    interval: Interval = None,
    timeout: Timeout = None,
    rise: Rise = None,
    fall: Fall = None,
    rotate_packets: RotatePackets = None,
    rotate_seconds: RotateSeconds = None,
    on: On = None,
    webhook: Webhook = None,
    run: RunCommand = None,
    secret: Secret = None,
    clear_actions: Annotated[
        bool, typer.Option("--clear-actions", help="Remove every action first.")
    ] = False,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Change a pool's settings (those not given stay as they are; --on adds an action)."""
    s = session(ctx, url, token, json)
    given = settings(
        policy,
        scope,
        all_down,
        check,
        interval,
        timeout,
        rise,
        fall,
        rotate_packets,
        rotate_seconds,
    )
    added = action(on, webhook, run, secret)
    if clear_actions:
        given["actions"] = []
    if added is not None:
        given["add_actions"] = [added]
    if not given:
        raise fail("nothing to change: give --policy, --check, --on ... (see --help)")
    pool = s.client.update_pool(ref, given)
    if s.json:
        out.print_json(pool)
        return
    show_pool(pool)


@app.command("list")
def list_(
    ctx: typer.Context,
    network: InNetwork = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """List the pools the token may see."""
    s = session(ctx, url, token, json)
    found = s.client.list_pools(network)
    if s.json:
        out.print_json(found)
        return
    grid = out.table("NAME", "NETWORK", "IP", "POLICY", "STATE", "HEALTHY", "CHECK", "ID")
    for p in found:
        healthy = f"{sum(m.health == 'up' for m in p.members)}/{len(p.members)}"
        out.add_row(
            grid, [p.name, p.network, p.ip, p.policy, p.state, healthy, describe_check(p), p.id]
        )
    out.print_table(grid, "no pools")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Ref,
    network: InNetwork = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Show a pool with its members' health, load and selections."""
    s = session(ctx, url, token, json)
    pool = s.client.get_pool(ref, network)
    if s.json:
        out.print_json(pool)
        return
    show_pool(pool)


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete a pool (its IP stops resolving; prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_pool(ref)
    if not s.json:
        out.print_line(f"deleted pool {ref}")


@app.command("accept")
def accept(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Accept a detected (proposed) pool: its address resolves to its members from now on."""
    s = session(ctx, url, token, json)
    found = s.client.accept_pool(ref)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"accepted pool {found.name}: {found.ip} is live")
    show_pool(found)


@app.command("reject")
def reject(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Reject a detected pool: its address stays spoofed and is not proposed again."""
    s = session(ctx, url, token, json)
    found = s.client.reject_pool(ref)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"rejected pool {found.name}: traffic from {found.ip} stays dropped")


Node = Annotated[str, typer.Argument(help="A node of the pool's network.", show_default=False)]


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    pool: Ref,
    node: Node,
    rank: Annotated[int | None, typer.Option(help="Order for ranked (default: last).")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Add a member: it starts `initial` and takes traffic once its check passes."""
    s = session(ctx, url, token, json)
    found = s.client.add_member(pool, node, rank)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"added {node} to pool {found.name}")
    show_pool(found)


@member_app.command("remove")
def member_remove(
    ctx: typer.Context,
    pool: Ref,
    node: Node,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Remove a member (its requesters move to their next alternative)."""
    s = session(ctx, url, token, json)
    found = s.client.remove_member(pool, node)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"removed {node} from pool {found.name}")
    show_pool(found)
