"""The built-in plugins, installed through the ``hookruntime.plugins`` entry points."""
