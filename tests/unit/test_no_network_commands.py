"""No `ip`, `tc`, `nsenter` or `ethtool` command is run by onm itself: the kernel is configured over
netlink (`onm.netlink`). The only commands left are a user's own, run inside a namespace
where the lab deliberately does so (`onm lab exec`, the demo's commands inside nodes).

A static check over the source: an argv literal (a list or tuple) starting with one of those
names, a name bound to one (`IP = "ip"`), or `shutil.which` looking one up, anywhere but the
places listed in ALLOWED.
"""

from __future__ import annotations

import ast
from pathlib import Path

import onm

COMMANDS = frozenset({"ip", "tc", "nsenter", "ethtool"})
SOURCE = Path(onm.__file__).parent

ALLOWED = frozenset(
    {
        # `onm lab exec TARGET -- COMMAND`: the user's command, in the node's namespace.
        ("lab/runner.py", "exec_argv"),
        # The demo runs its commands inside the nodes, as a user would type them.
        ("lab/demo.py", "run_in"),
        ("lab/demo.py", "start_service"),  # the members' HTTP service, in their namespaces
        ("lab/demo_edge.py", "start_in"),  # the external server, and a node's download
    }
)
"""(file under src/onm, enclosing function) where such a command is a user's command."""


def _is_command(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in COMMANDS


def _is_argv(node: ast.List | ast.Tuple) -> bool:
    """`["ip", "-6", ...]`, `("nsenter", f"--net={x}")`, `["ip", *more]`; not a label
    pair such as `("ip", node.ip)`."""
    if not node.elts or not _is_command(node.elts[0]):
        return False
    rest = node.elts[1:2]
    return not rest or isinstance(rest[0], ast.Constant | ast.JoinedStr | ast.Starred)


def findings(tree: ast.AST) -> list[tuple[str, int]]:
    """(enclosing function, line) of every place `tree` runs or names such a command."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        hit = (
            (isinstance(node, ast.List | ast.Tuple) and _is_argv(node))
            or (
                isinstance(node, ast.Assign | ast.AnnAssign)
                and node.value is not None
                and _is_command(node.value)
            )
            or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "which"
                and any(_is_command(arg) for arg in node.args)
            )
        )
        if hit:
            found.append((function, getattr(node, "lineno", 0)))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_the_check_sees_commands() -> None:
    tree = ast.parse(
        'IP = "ip"\n'
        "def f():\n    subprocess.run(['ip', '-6', 'route'])\n"
        "def g():\n    return ('nsenter', '--net=x')\n"
        "def h():\n    shutil.which('ethtool')\n"
        "def i():\n    return ['ip', *more]\n"
        "def fine():\n    return {'ip': 1}, ['-j', 'ip'], ('ip', node.ip)\n"
    )
    assert findings(tree) == [("<module>", 1), ("f", 3), ("g", 5), ("h", 7), ("i", 9)]


def test_no_network_command_outside_the_users_commands() -> None:
    offending = [
        f"{path.relative_to(SOURCE)}:{line} in {function}"
        for path in sorted(SOURCE.rglob("*.py"))
        for function, line in findings(ast.parse(path.read_text(), str(path)))
        if (path.relative_to(SOURCE).as_posix(), function) not in ALLOWED
    ]
    assert offending == []
