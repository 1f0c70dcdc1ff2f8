"""The layering of docs/architecture.md, checked on the imports of every module (at any depth, lazy
ones included): trainer -> vector, emulation, adapters, ocean -> core, and no torch outside the
trainer except the torch twin of the spaces module."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parent.parent / 'pufferlib'
CORE = {'pufferlib', 'pufferlib.exceptions', 'pufferlib.spaces', 'pufferlib.spaces_torch',
        'pufferlib.emulation_torch', 'pufferlib.examples'}
LAYERS = ('vector', 'emulation', 'adapters', 'ocean', 'trainer')
TORCH_OUTSIDE_TRAINER = {'pufferlib.spaces_torch', 'pufferlib.emulation_torch'}


def layer(module):
    """'core', one of LAYERS, or None for a module outside pufferlib."""
    if module in CORE:
        return 'core'
    parts = module.split('.')
    if parts[0] != 'pufferlib':
        return None
    return parts[1] if parts[1] in LAYERS else 'core'


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path):
    """Every module `path` imports (for `from a import b`, both a and a.b, since b may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f'{node.module}.{alias.name}' for alias in node.names)
    return found


MODULES = [pytest.param(path, id=module_name(path)) for path in sorted(PACKAGE.rglob('*.py'))]


@pytest.mark.parametrize('path', MODULES)
def test_imports_point_down(path):
    own = layer(module_name(path))
    allowed = set(LAYERS) | {'core'} if own == 'trainer' else {'core', own}
    names = imports(path)
    wrong = sorted(n for n in names if layer(n) not in allowed | {None})
    assert not wrong, f'{module_name(path)} ({own}) imports {wrong}'
    if own != 'trainer' and module_name(path) not in TORCH_OUTSIDE_TRAINER:
        assert not {n for n in names if n.split('.')[0] == 'torch'}, \
            f'{module_name(path)} imports torch'


def test_the_rules_see_what_they_check():
    """The checker finds a lazy import inside a function, and knows the layers of the modules."""
    assert 'pufferlib.emulation' in imports(PACKAGE / 'trainer' / 'envs.py')
    assert [layer(m) for m in ('pufferlib', 'pufferlib.spaces', 'pufferlib.vector.protocol',
                               'pufferlib.ocean.breakout.binding', 'pufferlib.trainer.ppo', 'numpy')] \
        == ['core', 'core', 'vector', 'ocean', 'trainer', None]
