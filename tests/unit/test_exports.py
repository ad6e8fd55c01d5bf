import types

import hookruntime


def test_all_names_exist_and_are_unique() -> None:
    assert len(hookruntime.__all__) == len(set(hookruntime.__all__))
    for name in hookruntime.__all__:
        assert hasattr(hookruntime, name), name


def test_every_public_member_is_exported() -> None:
    # Most names are bound on first use (see hookruntime.__getattr__): bind them all
    # first, so that the answer does not depend on which tests ran before this one.
    for name in hookruntime.__all__:
        getattr(hookruntime, name)
    public = {
        name
        for name, value in vars(hookruntime).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(hookruntime.__all__) - {"__version__"}


def test_every_exported_exception_derives_from_one_base() -> None:
    exported = [getattr(hookruntime, n) for n in hookruntime.__all__]
    errors = [e for e in exported if isinstance(e, type) and issubclass(e, BaseException)]
    assert len(errors) >= 8
    for error in errors:
        assert issubclass(error, hookruntime.HookRuntimeError), error
