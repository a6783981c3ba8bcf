"""Convert between e3x (flax) modules + variables and eqx_mp modules, exactly.

``from_e3x(module, variables, *args, **kwargs)`` takes an e3x ``MessagePass``, ``Dense``,
``Tensor``, ``FusedTensor``, ``TensorDense``, ``MultiHeadAttention``, ``SelfAttention`` or
``Embed``, its variables, and the same example call arguments one passes to ``module.init``
(they fix the sizes e3x infers lazily) and returns the eqx_mp module with identical options and
weights. ``to_e3x(module)`` returns ``(e3x_module, variables)``. Round trips
are bit-exact.
"""

from __future__ import annotations

import importlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import degree_from_size
from ..nn.attention import MultiHeadAttention, SelfAttention
from ..nn.dense import Dense
from ..nn.fused_tensor import FusedTensor
from ..nn.message_pass import MessagePass
from ..nn.tensor import Tensor
from ..nn.tensor_dense import TensorDense
from ..nn.tensor_product import AbstractTensorProduct

__all__ = ["from_e3x", "to_e3x"]

_FUSED_NAMES = ("kernel_e1", "kernel_o1", "kernel_e2", "kernel_o2",
                "kernel_eee", "kernel_ooe", "kernel_eoo", "kernel_oeo")


def _e3x() -> Any:
    try:
        return importlib.import_module("e3x")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("eqx_mp.interop needs e3x and flax: pip install 'eqx_mp[e3x]'") from err


def _params(variables: Any) -> dict:
    v = dict(variables)
    return dict(v["params"]) if "params" in v else v


def _arg(args: tuple, kwargs: dict, pos: int, name: str) -> Any:
    if len(args) > pos:
        return args[pos]
    if name in kwargs:
        return kwargs[name]
    raise TypeError(f"from_e3x needs the example argument '{name}' (the arguments passed to module.init)")


def _dense_names(parity: int, max_degree: int) -> list[list[str]]:
    if parity == 1:
        return [[f"{l}{'+-'[l % 2]}" for l in range(max_degree + 1)]]
    return [[f"{l}+" for l in range(max_degree + 1)], [f"{l}-" for l in range(max_degree + 1)]]


def _dense_kernel(params: dict, parity: int, max_degree: int) -> tuple[jax.Array, Any]:
    names = _dense_names(parity, max_degree)
    kernel = jnp.stack([jnp.stack([jnp.asarray(params[n]["kernel"]) for n in row]) for row in names])
    bias = params[names[0][0]].get("bias")
    return kernel, (None if bias is None else jnp.asarray(bias))


def _skeleton(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """Build ``cls(*args, **kwargs)`` without running its initialisers (all leaves are replaced)."""
    return eqx.filter_eval_shape(cls, *args, key=jax.random.key(0), **kwargs)


def _set(module: Any, **arrays: Any) -> Any:
    for name, value in arrays.items():
        path = name.split(".")

        def where(m, path=path):
            for p in path:
                m = getattr(m, p)
            return m

        module = eqx.tree_at(where, module, value, is_leaf=lambda x: x is None)
    return module


def _dense_from(m: Any, params: dict, x: Any) -> Dense:
    parity, max_degree, fin = x.shape[-3], degree_from_size(x.shape[-2], "inputs"), x.shape[-1]
    kernel, bias = _dense_kernel(params, parity, max_degree)
    out = _skeleton(Dense, fin, m.features, max_degree, parity=parity, use_bias=m.use_bias,
                    dtype=m.dtype, param_dtype=kernel.dtype, precision=m.precision)
    return _set(out, kernel=kernel, bias=bias)


def _tensor_from(m: Any, params: dict, x1: Any, x2: Any, fused: bool) -> Tensor | FusedTensor:
    l1, l2 = degree_from_size(x1.shape[-2], "inputs1"), degree_from_size(x2.shape[-2], "inputs2")
    cls = FusedTensor if fused else Tensor
    dtype_src = params[_FUSED_NAMES[0]] if fused else params["kernel"]
    out = _skeleton(cls, x1.shape[-1], l1, l2, parity1=x1.shape[-3], parity2=x2.shape[-3],
                    max_degree=m.max_degree, include_pseudotensors=m.include_pseudotensors,
                    cartesian_order=m.cartesian_order, dtype=m.dtype,
                    param_dtype=jnp.asarray(dtype_src).dtype, precision=m.precision)
    if fused:
        return _set(out, **{n: jnp.asarray(params[n]) for n in _FUSED_NAMES})
    return _set(out, kernel=jnp.asarray(params["kernel"]))


def _tensor_arrays(prefix: str, params: dict, fused: bool) -> dict:
    """``{prefix.name: array}`` of a Tensor/FusedTensor's parameters (e3x's names)."""
    t = params["fused_tensor" if fused else "tensor"]
    names = _FUSED_NAMES if fused else ("kernel",)
    return {f"{prefix}{n}": jnp.asarray(t[n]) for n in names}


def _tensor_dense_from(m: Any, params: dict, x: Any) -> TensorDense:
    fused = bool(m.use_fused_tensor)
    max_degree = degree_from_size(x.shape[-2], "inputs")
    kernel, bias = _dense_kernel(params["dense"], x.shape[-3], max_degree)
    out = _skeleton(
        TensorDense, x.shape[-1], max_degree, in_parity=x.shape[-3],
        features=m.features, max_degree=m.max_degree, use_bias=m.use_bias,
        include_pseudotensors=m.include_pseudotensors, cartesian_order=m.cartesian_order,
        use_fused_tensor=fused, dtype=m.dtype, param_dtype=kernel.dtype, precision=m.precision,
    )
    return _set(out, **{"dense.kernel": kernel, "dense.bias": bias},
                **_tensor_arrays("tensor.", params, fused))


_ATTENTION_OPTIONS = (
    "num_heads", "qkv_features", "out_features", "max_degree", "use_basis_bias",
    "include_pseudotensors", "cartesian_order", "use_fused_tensor",
    "use_relative_positional_encoding_qk", "use_relative_positional_encoding_v", "dtype",
    "precision", "query_use_bias", "key_use_bias", "value_use_bias", "output_use_bias",
)


def _attention_from(
    m: Any, params: dict, xq: Any, xkv: Any, basis: Any, self_attention: bool
) -> Any:
    options = {name: getattr(m, name) for name in _ATTENTION_OPTIONS}
    options["use_fused_tensor"] = bool(options["use_fused_tensor"])
    lq = degree_from_size(xq.shape[-2], "inputs_q")
    lkv = degree_from_size(xkv.shape[-2], "inputs_kv")
    nb, lb = None, None
    if basis is not None:
        nb, lb = basis.shape[-1], degree_from_size(basis.shape[-2], "basis")
    dtype = jnp.asarray(params["query"]["0+"]["kernel"]).dtype
    if self_attention:
        out = _skeleton(SelfAttention, xq.shape[-1], lq, nb, lb, in_parity=xq.shape[-3],
                        param_dtype=dtype, **options)
    else:
        out = _skeleton(MultiHeadAttention, xq.shape[-1], xkv.shape[-1], lq, lkv, nb, lb,
                        q_parity=xq.shape[-3], kv_parity=xkv.shape[-3], param_dtype=dtype,
                        **options)
    arrays = {}
    for name in ("query", "key", "value", "out"):
        sub = getattr(out, name)
        arrays[f"{name}.kernel"], arrays[f"{name}.bias"] = _dense_kernel(
            params[name], sub.parity, sub.max_degree)
    if out.relative_positional_encoding is not None:
        rel = params["relative_positional_encoding"]
        arrays["relative_positional_encoding.kernel"] = jnp.asarray(rel["kernel"])[None, None]
        arrays["relative_positional_encoding.bias"] = (
            None if "bias" not in rel else jnp.asarray(rel["bias"]))
    if out.message_pass is not None:
        assert lb is not None  # the layer has a message pass only when given a basis
        arrays["message_pass.filter.kernel"], arrays["message_pass.filter.bias"] = _dense_kernel(
            params["filter"], 1, lb)
        arrays.update(_tensor_arrays("message_pass.tensor.", params, options["use_fused_tensor"]))
    return _set(out, **arrays)


def _complete(module: Any) -> Any:
    """Guard: every parameter of the skeleton must have been replaced by a real array."""
    if any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree_util.tree_leaves(module)):
        raise RuntimeError(f"from_e3x left a parameter of {type(module).__name__} unset")  # pragma: no cover
    return module


def from_e3x(module: Any, variables: Any, *args: Any, **kwargs: Any) -> Any:
    """Build the eqx_mp module equivalent to an e3x module, with identical weights.

    Arguments:
        module: An ``e3x.nn.MessagePass``, ``Dense``, ``Tensor``, ``FusedTensor``,
            ``TensorDense``, ``MultiHeadAttention``, ``SelfAttention`` or ``Embed``.
        variables: Its variables (``{'params': ...}`` as returned by ``module.init``).
        *args, **kwargs: The example call arguments used for ``module.init`` (shapes only).

    Returns:
        The eqx_mp module. ``module.apply(variables, *a, **kw)`` and ``eqx_module(*a, **kw)`` agree.

    Raises:
        TypeError: For an unsupported module type or missing example arguments.
    """
    e3x = _e3x()
    params = _params(variables)
    if isinstance(module, e3x.nn.MessagePass):
        x = _arg(args, kwargs, 0, "inputs")
        b = _arg(args, kwargs, 1, "basis")
        lb, l_in = degree_from_size(b.shape[-2], "basis"), degree_from_size(x.shape[-2], "inputs")
        fused = bool(module.use_fused_tensor)
        tkey = "fused_tensor" if fused else "tensor"
        fk, fb = _dense_kernel(params["filter"], 1, lb)
        out = _skeleton(
            MessagePass, x.shape[-1], b.shape[-1], l_in, lb, in_parity=x.shape[-3], max_degree=module.max_degree,
            use_basis_bias=module.use_basis_bias, include_pseudotensors=module.include_pseudotensors,
            cartesian_order=module.cartesian_order, use_fused_tensor=fused, dtype=module.dtype,
            param_dtype=fk.dtype, precision=module.precision,
        )
        t = params[tkey]
        arrays = {"filter.kernel": fk, "filter.bias": fb}
        if fused:
            arrays.update({f"tensor.{n}": jnp.asarray(t[n]) for n in _FUSED_NAMES})
        else:
            arrays["tensor.kernel"] = jnp.asarray(t["kernel"])
        return _complete(_set(out, **arrays))
    if isinstance(module, e3x.nn.Dense):
        return _complete(_dense_from(module, params, _arg(args, kwargs, 0, "inputs")))
    if isinstance(module, (e3x.nn.Tensor, e3x.nn.FusedTensor)):
        x1, x2 = _arg(args, kwargs, 0, "inputs1"), _arg(args, kwargs, 1, "inputs2")
        return _complete(_tensor_from(module, params, x1, x2, isinstance(module, e3x.nn.FusedTensor)))
    if isinstance(module, e3x.nn.TensorDense):
        return _complete(_tensor_dense_from(module, params, _arg(args, kwargs, 0, "inputs")))
    if isinstance(module, e3x.nn.SelfAttention):
        x = _arg(args, kwargs, 0, "inputs")
        basis = args[1] if len(args) > 1 else kwargs.get("basis")
        return _complete(_attention_from(module, params, x, x, basis, True))
    if isinstance(module, e3x.nn.MultiHeadAttention):
        xq, xkv = _arg(args, kwargs, 0, "inputs_q"), _arg(args, kwargs, 1, "inputs_kv")
        basis = args[2] if len(args) > 2 else kwargs.get("basis")
        return _complete(_attention_from(module, params, xq, xkv, basis, False))
    if isinstance(module, e3x.nn.Embed):
        embed_mod = importlib.import_module("eqx_mp.nn.embed")
        emb = jnp.asarray(params["embedding"])
        out = _skeleton(embed_mod.Embed, module.num_embeddings, module.features, dtype=module.dtype,
                        param_dtype=emb.dtype)
        return _complete(_set(out, embedding=emb))
    raise TypeError(f"from_e3x does not support {type(module).__name__}; supported: MessagePass, "
                    "Dense, Tensor, FusedTensor, TensorDense, MultiHeadAttention, SelfAttention, "
                    "Embed")


def _dense_params(d: Dense) -> dict:
    out = {}
    for p, row in enumerate(_dense_names(d.parity, d.max_degree)):
        for l, name in enumerate(row):
            out[name] = {"kernel": d.kernel[p, l]}
    if d.bias is not None:
        out[_dense_names(d.parity, d.max_degree)[0][0]]["bias"] = d.bias
    return out


def _tensor_params(t: AbstractTensorProduct) -> dict:
    if isinstance(t, FusedTensor):
        return {n: getattr(t, n) for n in _FUSED_NAMES}
    if isinstance(t, Tensor):
        return {"kernel": t.kernel}
    raise TypeError(f"no e3x tensor product corresponds to {type(t).__name__}")


def to_e3x(module: Any) -> tuple[Any, dict]:
    """The e3x module and variables equivalent to an eqx_mp module.

    Arguments:
        module: An eqx_mp ``MessagePass``, ``Dense``, ``Tensor``, ``FusedTensor``,
            ``TensorDense``, ``MultiHeadAttention``, ``SelfAttention`` or ``Embed``.

    Returns:
        ``(e3x_module, {'params': ...})`` such that ``e3x_module.apply(variables, ...)`` equals
        ``module(...)``.
    """
    e3x = _e3x()
    if isinstance(module, MessagePass):
        m = e3x.nn.MessagePass(
            max_degree=module.max_degree, use_basis_bias=module.use_basis_bias,
            include_pseudotensors=module.include_pseudotensors, cartesian_order=module.cartesian_order,
            use_fused_tensor=module.use_fused_tensor, dtype=module.dtype,
            param_dtype=module.filter.kernel.dtype, precision=module.precision,
        )
        key = "fused_tensor" if module.use_fused_tensor else "tensor"
        return m, {"params": {"filter": _dense_params(module.filter), key: _tensor_params(module.tensor)}}
    if isinstance(module, Dense):
        m = e3x.nn.Dense(module.features, use_bias=module.use_bias, dtype=module.dtype,
                         param_dtype=module.kernel.dtype, precision=module.precision)
        return m, {"params": _dense_params(module)}
    if isinstance(module, (Tensor, FusedTensor)):
        cls = e3x.nn.FusedTensor if isinstance(module, FusedTensor) else e3x.nn.Tensor
        m = cls(max_degree=module.max_degree, include_pseudotensors=module.include_pseudotensors,
                cartesian_order=module.cartesian_order, dtype=module.dtype, precision=module.precision,
                param_dtype=jax.tree_util.tree_leaves(module)[0].dtype)
        return m, {"params": _tensor_params(module)}
    if isinstance(module, TensorDense):
        key = "fused_tensor" if module.use_fused_tensor else "tensor"
        m = e3x.nn.TensorDense(
            features=module.features, max_degree=module.max_degree, use_bias=module.use_bias,
            include_pseudotensors=module.include_pseudotensors, cartesian_order=module.cartesian_order,
            use_fused_tensor=module.use_fused_tensor, dtype=module.dtype,
            param_dtype=module.dense.kernel.dtype, precision=module.precision,
        )
        params = {"dense": _dense_params(module.dense), key: _tensor_params(module.tensor)}
        return m, {"params": params}
    if isinstance(module, (MultiHeadAttention, SelfAttention)):
        self_attention = isinstance(module, SelfAttention)
        cls = e3x.nn.SelfAttention if self_attention else e3x.nn.MultiHeadAttention
        options = {name: getattr(module, name) for name in _ATTENTION_OPTIONS
                   if not name.endswith("_use_bias")}
        options.update(query_use_bias=module.query.use_bias, key_use_bias=module.key.use_bias,
                       value_use_bias=module.value.use_bias, output_use_bias=module.out.use_bias)
        if not module.use_relative_positional_encoding_v:
            options["max_degree"] = None  # e3x ignores it without the values' encoding
        m = cls(param_dtype=module.query.kernel.dtype, **options)
        params = {name: _dense_params(getattr(module, name))
                  for name in ("query", "key", "value", "out")}
        rel = module.relative_positional_encoding
        if rel is not None:
            params["relative_positional_encoding"] = {"kernel": rel.kernel[0, 0]}
            if rel.bias is not None:
                params["relative_positional_encoding"]["bias"] = rel.bias
        if module.message_pass is not None:
            key = "fused_tensor" if module.use_fused_tensor else "tensor"
            params["filter"] = _dense_params(module.message_pass.filter)
            params[key] = _tensor_params(module.message_pass.tensor)
        return m, {"params": params}
    if type(module).__name__ == "Embed":
        m = e3x.nn.Embed(module.num_embeddings, module.features, dtype=module.dtype,
                         param_dtype=module.embedding.dtype)
        return m, {"params": {"embedding": module.embedding}}
    raise TypeError(f"to_e3x does not support {type(module).__name__}")


