"""Builds every Cython/C extension of the package: each `pufferlib/**/*.pyx` is one module.

Environment variables:
  PUFFER_SANITIZE=1   build with -fsanitize=address,undefined (for the sanitizer tests)
  PUFFER_ONLY=name    build only the extensions whose module name contains `name` (development)
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

if os.environ.get('PUFFER_SANITIZE'):
    flags = ['-O1', '-g', '-fsanitize=address,undefined', '-fno-omit-frame-pointer',
             '-fno-sanitize-recover=undefined']
    link_flags = ['-fsanitize=address,undefined']
else:
    flags = ['-O3', '-fno-strict-aliasing']
    link_flags = []
# Only PyInit_* leaves a module: game functions must never interpose libc's (or each other's).
flags += ['-fvisibility=hidden', '-Wno-unused-function']

extensions = []
for path in sorted(glob.glob('pufferlib/**/*.pyx', recursive=True)):
    name = path[:-len('.pyx')].replace(os.sep, '.')
    if os.environ.get('PUFFER_ONLY', '') not in name:
        continue
    extensions.append(Extension(
        name, [path],
        include_dirs=[numpy.get_include(), os.path.dirname(path), 'pufferlib/ocean'],
        define_macros=[('NPY_NO_DEPRECATED_API', 'NPY_1_7_API_VERSION')],
        extra_compile_args=flags, extra_link_args=link_flags))

setup(ext_modules=cythonize(extensions, compiler_directives={
    'language_level': 3, 'boundscheck': False, 'wraparound': False,
    'initializedcheck': False, 'cdivision': True, 'embedsignature': True}))
