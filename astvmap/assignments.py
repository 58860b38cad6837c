"""The translator's assignments: ``x = ...``, unpacking, item writes
(``a[i] = v``), augmented assignment (``a[i] += v``) and their masked forms.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
import libcst.matchers

from . import indexing, selections
from .core import _element_val, _LocalDef, _val_key
from .syntax import _marked_line, _rename, _target_names, _walk_names
from .values import ARRAY, NOVALUE, OBJECT, SCALAR, TREE, Val, join


class Assignments:
    """Mixin for ``Translator``: assignments and item writes."""

    # assignments ------------------------------------------------------------
    def assign(self, node: cst.Assign) -> list[cst.BaseSmallStatement]:
        if _items_in_unpacking(node):
            return self.assign_in_steps(node)
        if self.lambda_definition(node):
            return [node]
        self.copied_choice = False
        code, val = self.expr(node.value)
        copied_choice = self.copied_choice
        if selections.contains(val) and not _one_subscript_target(node):
            code, val = selections.bind(self, node, code, val)
        if self.mask is not None:
            return self.masked_assign(node, code, val)
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Subscript):
            target, code = self.setitem(node.targets[0].target, val, code)
            return [
                node.with_changes(targets=[node.targets[0].with_changes(target=target)], value=code)
            ]
        if len(node.targets) == 1 and isinstance(node.targets[0].target, (cst.Tuple, cst.List)):
            code, val = self.unpackable(code, val, len(node.targets[0].target.elements), node.value)
        code = self.copy_of_scalar_item(node.value, code, val)
        targets = []
        for target in node.targets:
            targets.append(target.with_changes(target=self.bind_target(target.target, val)))
            chosen = isinstance(node.value, (cst.IfExp, cst.BooleanOperation)) and (
                not isinstance(code, type(node.value)) or copied_choice
            )
            if chosen:
                self.note_aliases(target.target, node.value)
            elif isinstance(target.target, cst.Name):
                self.aliases.pop(target.target.value, None)
        return [node.with_changes(targets=targets, value=code)]

    def copy_of_scalar_item(
        self, value: cst.BaseExpression, code: cst.BaseExpression, val: Val
    ) -> cst.BaseExpression:
        """``x = a[j]`` reading one example's scalar is a copy, but its batched form
        ``a[:, j]`` is a view: when the function writes into ``a`` in place anywhere, the
        name gets a copy, or a later write would change ``x`` too (was silently wrong)."""
        if not (isinstance(value, cst.Subscript) and val.batched and val.rank == 0):
            return code
        roots = _view_roots(value) & self.written_in_place
        if not roots:
            return code
        return self.parse("np.copy({x})", x=code)

    @property
    def written_in_place(self) -> set[str]:
        """Names the function writes items of, or updates with an augmented assignment."""
        if self._written_in_place is None:
            names: set[str] = set()
            for node in libcst.matchers.findall(self.node, libcst.matchers.AugAssign()):
                names |= _view_roots(node.target)
            for node in libcst.matchers.findall(self.node, libcst.matchers.AssignTarget()):
                if isinstance(node.target, cst.Subscript):
                    names |= _view_roots(node.target)
            self._written_in_place = names
        return self._written_in_place

    def lambda_definition(self, node: cst.Assign) -> bool:
        """``f = lambda v: v * w`` binds ``f`` to the lambda as written; a call ``f(x)``
        translates its body where it is called (calls.py inline_lambda), and any other
        use of ``f`` is checked then (expressions.py check_local_def)."""
        if not (
            self.mask is None
            and isinstance(node.value, cst.Lambda)
            and len(node.targets) == 1
            and isinstance(node.targets[0].target, cst.Name)
        ):
            return False
        self.bind_target(node.targets[0].target, Val(OBJECT, static=_LocalDef(node.value)))
        return True

    def assign_in_steps(self, node: cst.Assign) -> list[cst.BaseSmallStatement]:
        """``a[i], a[j] = a[j], a[i]``: as Python does it, the right side is computed
        first (into temporaries), then each target is assigned left to right, its
        index read at that moment. Each step is translated as its own statement."""
        target = node.targets[0].target
        assert isinstance(target, (cst.Tuple, cst.List))
        temps = [self.temp("unpacked") for _ in target.elements]
        names = cst.Tuple([cst.Element(cst.Name(t)) for t in temps])
        steps = [cst.Assign([cst.AssignTarget(names)], node.value)]
        for elem, t in zip(target.elements, temps):
            steps.append(cst.Assign([cst.AssignTarget(elem.value)], cst.Name(t)))
        out: list[cst.BaseSmallStatement] = []
        for k, step in enumerate(steps):
            new = self.small_statement(step)
            out.extend(self.pending)
            self.pending = []
            out.extend(new)
            if k == 0:
                out.extend(self.copy_scalar_temps(temps))
        for t in temps:
            # Only the steps use them: the loop fixpoints must not see them as state.
            self.env.pop(t, None)
            self.weak.discard(t)
            self.ctl.bound.discard(t)
        return out

    def copy_scalar_temps(self, temps: list[str]) -> list[cst.BaseSmallStatement]:
        """An item of one example's array read as a scalar is a copy; its batched
        form (``a[:, j]``) is a view, which the item writes that follow would change."""
        out: list[cst.BaseSmallStatement] = []
        for t in temps:
            val = self.env.get(t)
            if val is None or not val.batched:
                continue
            if val.kind == TREE and _has_batched_scalar(val):
                raise self.unsupported(
                    "a nested unpacking of batched scalars together with item writes "
                    "(their batched form would be views the writes change)",
                    "unpack the inner values on their own line first",
                )
            if val.kind not in (ARRAY, SCALAR):
                continue
            if val.rank is None:
                raise self.unsupported(
                    "cannot infer the rank of a value assigned in this unpacking",
                    "assign the items one per line",
                )
            if val.rank == 0:
                out.append(self.small_assign(t, self.parse("np.copy({x})", x=cst.Name(t))))
        return out

    def masked_assign(
        self, node: cst.Assign, code: cst.BaseExpression, val: Val
    ) -> list[cst.BaseSmallStatement]:
        """An assignment that only some lanes execute (see control.py)."""
        if len(node.targets) != 1:
            raise self.unsupported("chained assignment under a batched condition")
        target = node.targets[0].target
        if isinstance(target, cst.Name):
            new, new_val = self.masked_name(target.value, code, val)
            self.env[target.value] = new_val
            self.weak.discard(target.value)
            if new is not code:
                self.note_aliases(target, node.value)
            return [node.with_changes(value=new)]
        if isinstance(target, cst.Subscript):
            with self.dry():
                _, region = self.expr(target)
            new_target, code = self.setitem(target, val, code)
            rank = region.rank
            kept = (new_target, Val(ARRAY, batched=True, rank=rank))
            new, _ = self.where(self.mask, (code, dataclasses.replace(val, rank=rank)), kept)
            return [
                node.with_changes(
                    targets=[node.targets[0].with_changes(target=new_target)], value=new
                )
            ]
        if (
            isinstance(target, (cst.Tuple, cst.List))
            and isinstance(code, (cst.Tuple, cst.List))
            and len(target.elements) == len(code.elements)
            and all(isinstance(e.value, cst.Name) for e in target.elements)
        ):
            # a, b = b, a + b: every right-hand side is computed before any binding.
            pairs = [
                (e.value.value, c.value, _element_val(val, i))
                for i, (e, c) in enumerate(zip(target.elements, code.elements))
            ]
            merged = [self.masked_name(name, c, v) for name, c, v in pairs]
            for (name, _, _), (_, v) in zip(pairs, merged):
                self.env[name] = v
                self.weak.discard(name)
            value = code.with_changes(
                elements=[e.with_changes(value=m) for e, (m, _) in zip(code.elements, merged)]
            )
            return [node.with_changes(value=value)]
        if isinstance(target, (cst.Tuple, cst.List)) and not any(
            isinstance(e, cst.StarredElement) for e in target.elements
        ):
            return self.masked_unpack(node, target, code, val)
        if isinstance(target, cst.Attribute):
            return self.masked_attribute(node, target, code, val)
        raise self.unsupported(
            "this assignment under a batched condition",
            "assign names or items one at a time",
        )

    def masked_attribute(
        self, node: cst.Assign, target: cst.Attribute, code: cst.BaseExpression, val: Val
    ) -> list[cst.BaseSmallStatement]:
        """``self.R = np.diag(...)`` under a batched condition: the loop sets it once per
        example that gets here, each time to the same unbatched value, which one write
        does too, if any example gets here (check_attribute_write says when that holds)."""
        self.check_attribute_write(target)
        line = self.current_stmt
        if not (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1):
            raise self.unsupported(
                "an attribute assignment under a batched condition that shares its line",
                "put it on a line of its own",
            )
        new_target = self.bind_target(target, val)
        write = node.with_changes(targets=[node.targets[0].with_changes(target=new_target)])
        mask = self.mask
        assert mask is not None
        self.checks.append(
            self.when_any(mask, [*self.pending_out(), write.with_changes(value=code)])
        )
        return []

    def check_attribute_write(self, target: cst.Attribute, updates: bool = False) -> None:
        """``obj.a = v`` (``v`` unbatched) runs once for the batch, and once per example
        in the loop: the same when no example sees another's write. So refused where
        the function reads ``obj.a`` (or calls a method of ``obj``, or passes ``obj``)
        before the write, or its value reads it (``self.n = self.n + 1``: each example
        would add its own 1); reads after it are allowed only where every example that
        reads passed the write: a write at the function's top level (not in a loop,
        under a plain ``if``, or in a batched branch; after early returns is fine)."""
        path = _dotted(target)
        base = _dotted(target.value)
        if path is None or base is None:
            raise self.unsupported(
                "an attribute assignment of an object that is not a name or a chain of "
                "attributes",
                "return the value instead of storing it on the object",
            )
        where = self.positions.get(self.current_stmt)  # its value is read first
        top = not self.ctl.loops and self.ctl.plain_depth == 0
        top = top and all(f.kind == "func" for f in self.ctl.frames)
        for use in _state_uses(self.node, path, base):
            if use is target and not updates:
                continue
            pos = self.positions.get(use)
            after = (
                use is not target
                and where is not None
                and pos is not None
                and (pos.start.line, pos.start.column) > (where.end.line, where.end.column)
            )
            if not after or not top:
                raise self.unsupported(
                    f"`{path}` is stored on the object, and the function also reads it (line "
                    f"{self.file_line(use)}): in the loop each example would see the write of "
                    "the one before",
                    "return the value instead of storing it on the object",
                )

    def masked_unpack(
        self,
        node: cst.Assign,
        target: cst.Tuple | cst.List,
        code: cst.BaseExpression,
        val: Val,
    ) -> list[cst.BaseSmallStatement]:
        """``ax, ay, az = a`` (or ``w, v = np.linalg.eigh(K)``) under a batched condition:
        the right side is unpacked into temporaries in every lane (new names: the other
        lanes never read them), then each target is a masked assignment of its item, left
        to right, as Python assigns them."""
        n = len(target.elements)
        code, val = self.unpackable(code, val, n, node.value)
        temps = [self.temp("unpacked") for _ in range(n)]
        if all(isinstance(e.value, cst.Name) for e in target.elements):
            items = [cst.Name(t) for t in temps]
            merged = [
                self.masked_name(e.value.value, item, _element_val(val, i))
                for i, (e, item) in enumerate(zip(target.elements, items))
            ]
            for e, (_, v) in zip(target.elements, merged):
                self.env[e.value.value] = v
                self.weak.discard(e.value.value)
            self.ctl.temps.difference_update(temps)
            if all(m is item for (m, _), item in zip(merged, items)):
                # Every name is first bound here: the other lanes never read them.
                return [*self.pending_out(), node.with_changes(value=code)]
            names = cst.Tuple([cst.Element(item) for item in items])
            self.ctl.temps.update(temps)
            return [
                cst.Assign([cst.AssignTarget(names)], code),
                *self.pending_out(),
                *(
                    cst.Assign([cst.AssignTarget(e.value)], m)
                    for e, (m, _) in zip(target.elements, merged)
                ),
            ]
        names = cst.Tuple([cst.Element(cst.Name(t)) for t in temps])
        out: list[cst.BaseSmallStatement] = [cst.Assign([cst.AssignTarget(names)], code)]
        for i, t in enumerate(temps):
            self.env[t] = _element_val(val, i)
        for elem, t in zip(target.elements, temps):
            new = self.small_statement(cst.Assign([cst.AssignTarget(elem.value)], cst.Name(t)))
            out.extend(self.pending)
            self.pending = []
            out.extend(new)
        for t in temps:
            # Only the steps use them: the loop fixpoints must not see them as state.
            self.env.pop(t, None)
            self.weak.discard(t)
        return out

    def pending_out(self) -> list[cst.BaseSmallStatement]:
        out, self.pending = self.pending, []
        return out

    def unpackable(
        self,
        code: cst.BaseExpression,
        val: Val,
        n: int,
        value: cst.BaseExpression | None = None,
    ) -> tuple[cst.BaseExpression, Val]:
        """Unpacking a batched array iterates its first per-example axis.

        Per example the items of a vector are NumPy scalars, copies; their batched form
        (``a[:, i]``) is a view: when the function writes into the array (``value``) in
        place anywhere, the items are copied, or the write would change them too."""
        if val.kind == ARRAY and val.batched:
            if not val.rank:
                raise self.unsupported("cannot unpack a batched scalar")
            elem = Val.array(val.rank - 1, True, val.dtype)
            moved = "np.moveaxis({x}, 1, 0)"
            if val.rank == 1 and value is not None and _view_roots(value) & self.written_in_place:
                moved = "np.moveaxis({x}, 1, 0).copy()"
            return self.parse(moved, x=code), Val(
                TREE, batched=True, children=tuple((i, elem) for i in range(n)), container=tuple
            )
        if val.kind == ARRAY and val.rank and val.static is NOVALUE and val.sample is NOVALUE:
            # An unbatched array: its items are arrays of one rank less.
            elem = Val.array(val.rank - 1, False, val.dtype)
            return code, Val.tree(tuple, [(i, elem) for i in range(n)])
        return code, val

    def bind_target(
        self, target: cst.BaseAssignTargetExpression, val: Val
    ) -> cst.BaseAssignTargetExpression:
        if isinstance(target, cst.Name):
            self.env[target.value] = val
            self.weak.discard(target.value)
            self.unmasked_bind(target.value)
            self.ctl.bound.add(target.value)
            return target
        if isinstance(target, (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in target.elements):
                if val.batched:
                    raise self.unsupported("starred unpacking of batched values")
                for e in target.elements:
                    self._bind_unknown(e.value)
                return target
            elems = []
            for i, elem in enumerate(target.elements):
                elems.append(
                    elem.with_changes(value=self.bind_target(elem.value, _element_val(val, i)))
                )
            return target.with_changes(elements=elems)
        if isinstance(target, cst.Subscript):
            raise self.unsupported(
                "item assignment inside an unpacking target", "assign the item on its own line"
            )
        if isinstance(target, cst.Attribute):
            obj_code, obj = self.expr(target.value)
            if obj.batched and obj.kind == ARRAY and target.attr.value not in ("real", "imag"):
                # x.flat = seq cycles seq over the whole batch, x.shape = s reshapes it:
                # neither is what each example's assignment does.
                raise self.unsupported(
                    f"assigning to .{target.attr.value} of a batched array",
                    "build the new array (np.reshape, np.full, x[...] = v) instead",
                )
            if val.batched:
                raise self.refuse(
                    "assigning a batched value to an attribute would leak it out of the function",
                    "return the value instead",
                )
            self.check_attribute_write(target)
            return target.with_changes(value=obj_code)
        raise self.unsupported(f"cannot assign to {type(target).__name__}")

    def _bind_unknown(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.env[target.value] = Val(OBJECT)

    def setitem(
        self, target: cst.Subscript, val: Val, code: cst.BaseExpression
    ) -> tuple[cst.Subscript, cst.BaseExpression]:
        """``buf[index] = value``; a batched index makes it a scatter."""
        buf_code, buf = self.expr(target.value)
        if buf.batched and _is_flat(target.value):
            # x.flat of a batched x is read as a reshaped array, which may be a copy.
            raise self.unsupported(
                "writing through .flat of a batched array", "index the array itself: x[i, j] = v"
            )
        if buf.kind == TREE:
            self.set_container_item(target, buf, val)
            return target.with_changes(value=buf_code), code
        elems = indexing.classify(self, target, buf, select=self.mask is None)
        written = selections.mask_write(elems, val)
        index_batched = any(e.batched for e in elems)
        if isinstance(target.value, cst.Name):
            self.note_write(target.value.value)
        if not buf.batched and not val.batched and not index_batched and self.mask is None:
            return target.with_changes(value=buf_code, slice=[e.element for e in elems]), code
        if not buf.batched:
            # The buffer becomes batched: a private writable copy per example.
            name = self.grow_buffer(target.value, buf_code, buf)
            code = self.before_growing(name, code)
            elems = self.index_before_growing(name, elems)
            self.pending.append(
                cst.Assign([cst.AssignTarget(cst.Name(name))], self.materialise(buf_code, buf))
            )
            buf = buf.with_batched(True)
            self.env[name] = buf
            buf_code = cst.Name(name)
        if written:
            return selections.write(self, target, buf_code, buf, elems, val, code)
        new_target, region_rank = indexing.scatter_target(self, target, buf_code, buf, elems)
        if val.batched:
            if region_rank is None or val.rank is None:
                raise self.unsupported("cannot infer the rank of the assigned region")
            if val.rank > region_rank:
                raise self.unsupported("the assigned value has more axes than the region")
            code = self.expand(code, region_rank - val.rank)
        return new_target, code

    def note_write(self, name: str) -> None:
        """``name`` is written in place; refused where it is another name in some examples."""
        self.written.add(name)
        for alias, roots in self.aliases.items():
            if name == alias or name in roots:
                other = sorted(roots)[0] if name == alias else alias
                raise self.unsupported(
                    f"`{alias}` may be `{sorted(roots)[0]}` (chosen by `a if c else b` or "
                    "`or`, which the batched code computes as a copy), and "
                    f"`{name}` is written in place here: `{other}` would not see the write",
                    f"make `{alias}` a copy (`.copy()`), or write through one name only",
                )

    def note_aliases(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """``target`` is bound to ``value`` through a batched choice (a copy per lane)."""
        if not isinstance(target, cst.Name):
            return
        roots = _select_roots(value) & (self.local_names - {target.value})
        if roots:
            self.aliases[target.value] = roots
        else:
            self.aliases.pop(target.value, None)

    def grow_buffer(self, node: cst.BaseExpression, code: cst.BaseExpression, buf: Val) -> str:
        """Check that the unbatched array ``node`` may get its batch axis by a write into
        it (the caller then emits the copy): its name, or a refusal saying why not."""
        if not isinstance(node, cst.Name) or buf.sample is not NOVALUE:
            raise self.refuse(
                "writing a batched value into an array that comes from outside the function",
                "copy it first (buf = buf.copy()) or build a new array",
            )
        name = node.value
        view = _view_of(self.node, name, set(self.params))
        if view is not None:
            raise self.unsupported(
                f"`{view}` and `{name}` may share memory (one is a view of the other), "
                f"and `{name}` needs a copy with a batch axis here: `{view}` would not "
                "see this write",
                "make the view a copy (`... .copy()`) or write through one name only",
            )
        self.grown.add(name)
        return name

    def set_container_item(self, target: cst.Subscript, buf: Val, val: Val) -> None:
        """``d[key] = value`` into a tuple/list/dict: the container's abstract value follows.

        Under a batched condition the item becomes ``np.where(mask, value, old)`` (the
        caller writes that code), so it is batched from here on. An item whose key is not
        known while transforming may be any item: allowed only when every item already
        has the value's abstract value, so that nothing known about the container changes.
        """
        key = self.static_key(target)
        name = target.value.value if isinstance(target.value, cst.Name) else None
        if key is NOVALUE or name is None or self.env.get(name) is not buf:
            same = all(_val_key(v) == _val_key(val) for _, v in buf.children)
            if buf.element is not None:
                same = _val_key(buf.element) == _val_key(val)
            if self.mask is None and same:
                return
            if buf.batched or val.batched or self.mask is not None:
                raise self.unsupported(
                    "item assignment into a container holding batched values, at a key that "
                    "is not known while transforming",
                    "use a literal key, or build a new container",
                )
            if name is not None:
                self.env[name] = Val(OBJECT)  # nothing is known of its items any more
            return
        old = buf.child(key)
        if self.mask is not None:
            if old is None:
                raise self.unsupported("adding an item to a container under a batched condition")
            if not (old.is_arraylike and val.is_arraylike):
                raise self.unsupported("replacing a container item under a batched condition")
            val = join(old, val).with_batched(True)
        kids = [(k, val if k == key else v) for k, v in buf.children]
        if old is None:
            if buf.container is not dict:
                raise self.unsupported("assigning past the end of a list")
            kids.append((key, val))
        self.env[name] = dataclasses.replace(Val.tree(buf.container or tuple, kids), origin=None)

    def static_key(self, target: cst.Subscript) -> Any:
        """The key of ``c[key]`` when it is known while transforming (else NOVALUE)."""
        if len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
            return NOVALUE
        with self.dry():
            _, kval = self.expr(target.slice[0].slice.value)
        return kval.static if kval.is_static else NOVALUE

    def aug_assign(self, node: cst.AugAssign) -> list[cst.BaseSmallStatement]:
        if isinstance(node.target, cst.Name) and selections.is_selection(
            self.env.get(node.target.value, Val(OBJECT))
        ):
            raise selections.refuse(self, "updating in place")
        op = type(node.operator)
        binop = cst.BinaryOperation(left=node.target, operator=_BINOP_FOR_AUG[op](), right=node.value)  # type: ignore[arg-type]
        if self.mask is not None:
            self.grow_before_masked_update(node.target)
            in_place = self.masked_in_place(node, binop)
            if in_place is not None:
                return in_place
            # Under a mask the update is a masked rebinding (or masked item write).
            return self.assign(cst.Assign([cst.AssignTarget(node.target)], binop))
        if isinstance(node.target, cst.Name):
            name = node.target.value
            before = self.env.get(name)
            code, val = self.expr(binop)
            assert isinstance(code, cst.BinaryOperation)
            in_place = (
                before is not None
                and name not in self.weak
                and before.kind != SCALAR
                and before.rank != 0
            )
            # Per example a rank-0 value is a NumPy scalar: `+=` rebinds it, as for
            # Python numbers; arrays of higher rank are updated in place.
            if in_place:
                self.note_write(name)
            if in_place and (before.batched or not val.batched):
                self.env[name] = (
                    dataclasses.replace(val, kind=before.kind) if before.kind == ARRAY else val
                )
                return [node.with_changes(value=code.right, target=code.left)]
            if in_place and before.kind == ARRAY:
                # An unbatched array updated in place by a batched value: give the
                # buffer its batch axis first, so the update keeps its dtype (and fails
                # on an unsafe cast) as the loop's in-place update does.
                self.grow_buffer(node.target, node.target, before)
                self.env[name] = dataclasses.replace(before, batched=True)
                value = self.before_growing(name, code.right)
                grown = cst.Assign(
                    [cst.AssignTarget(cst.Name(name))],
                    self.parse("{x}.copy()", x=self.broadcast(cst.Name(name), before)),
                )
                return [grown, node.with_changes(value=value, target=code.left)]
            # A Python scalar, or a rank-0 value growing a batch axis: rebind.
            self.env[name] = val
            return [cst.Assign([cst.AssignTarget(cst.Name(name))], code)]
        if isinstance(node.target, cst.Subscript):
            with self.dry():
                _, region = self.expr(node.target)
                _, rhs0 = self.expr(node.value)
            order = "biufc"
            widening = region.dtype is None or (
                region.dtype in ("b", "i", "u", "f")
                and rhs0.dtype != region.dtype
                and (rhs0.dtype is None or order.index(rhs0.dtype) > order.index(region.dtype))
            )
            if region.rank == 0 and region.kind in (ARRAY, SCALAR) and widening:
                # Per example `b[1]` is a NumPy scalar: `b[1] += v` computes
                # `b[1] + v` and assigns it (an unsafe cast included), not in place;
                # only a value of a wider kind (or dtypes not known) makes the difference.
                return self.assign(cst.Assign([cst.AssignTarget(node.target)], binop))
            with self.dry():
                _, buf = self.expr(node.target.value)
                elems = indexing.classify(self, node.target, buf, select=True)
                _, rhs = self.expr(node.value)
            if buf.batched or rhs.batched or any(e.batched for e in elems):
                # Each example owns its row (np.arange(B)), so repeated indices within
                # an example behave as in the loop (buffered, like buf[i] = buf[i] + v).
                rhs_code, rhs = self.expr(node.value)
                target, rhs_code = self.setitem(node.target, rhs, rhs_code)
                return [node.with_changes(target=target, value=rhs_code)]
            buf_code, buf = self.expr(node.target.value)
            elems = indexing.classify(self, node.target, buf)
            rhs_code, _ = self.expr(node.value)
            target = node.target.with_changes(value=buf_code, slice=[e.element for e in elems])
            return [node.with_changes(target=target, value=rhs_code)]
        code, val = self.expr(node.value)
        if val.batched:
            raise self.refuse("augmented assignment of a batched value to an attribute")
        if isinstance(node.target, cst.Attribute):
            # It reads the attribute it writes: each example would update it once.
            self.check_attribute_write(node.target, updates=True)
        return [node.with_changes(value=code)]

    def before_growing(self, name: str, code: cst.BaseExpression) -> cst.BaseExpression:
        """``code``, computed into a temporary first where it reads ``name``, which
        is about to be rebound to a copy with a batch axis."""
        if name not in set(_walk_names(code)):
            return code
        tmp = self.temp("value")
        self.pending.append(cst.Assign([cst.AssignTarget(cst.Name(tmp))], code))
        return cst.Name(tmp)

    def index_before_growing(self, name: str, elems: list[indexing.Elem]) -> list[indexing.Elem]:
        """Index elements that read ``name`` (``buf[buf[1].astype(int)] = x``) read the
        buffer as it was before it got its batch axis, as the loop's index does."""
        if not any(name in set(_walk_names(e.element)) for e in elems):
            return elems
        before = self.temp(f"{name}_before")
        self.pending.append(cst.Assign([cst.AssignTarget(cst.Name(before))], cst.Name(name)))
        return [dataclasses.replace(e, element=_rename(e.element, name, before)) for e in elems]

    def grow_before_masked_update(self, target: cst.BaseExpression) -> None:
        """``buf += v`` under a batched condition updates ``buf`` in place, in some lanes:
        an unbatched array gets its batch axis first (in every lane, whichever run the
        update), so the update stays in place and reaches a caller that passed it."""
        if not isinstance(target, cst.Name):
            return
        name = target.value
        before = self.env.get(name)
        if (
            before is None
            or before.kind != ARRAY
            or before.batched
            or before.rank in (None, 0)
            or name in self.weak
            or name not in self.ctl.bound
        ):
            return
        self.grow_buffer(target, target, before)
        grown = cst.Assign([cst.AssignTarget(target)], self.materialise(target, before))
        self.checks.append(_marked_line(grown, self._marker(self.current_stmt)))
        self.env[name] = before.with_batched(True)

    def masked_in_place(
        self, node: cst.AugAssign, binop: cst.BinaryOperation
    ) -> list[cst.BaseSmallStatement] | None:
        """``x -= v`` on a batched array under a mask: updated in place in the
        masked lanes (``np.copyto``), as the loop updates it in place. Other names
        bound to the same array (a ``for`` over it, a view) see the update;
        ``same_kind`` casting raises where the loop's in-place update would."""
        if not isinstance(node.target, cst.Name):
            return None
        name = node.target.value
        before = self.env.get(name)
        if (
            before is None
            or before.kind != ARRAY
            or not before.batched
            or before.rank in (None, 0)
            or name in self.weak
            or name not in self.ctl.bound
        ):
            return None
        mask = self.mask
        assert mask is not None
        self.note_write(name)
        code, _ = self.expr(binop)
        call = self.parse(
            'np.copyto({x}, {v}, where={m}, casting="same_kind")',
            x=cst.Name(name),
            v=code,
            m=self.expand(mask, before.rank),
        )
        line = self.current_stmt
        if not (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1):
            return [cst.Expr(call)]
        # Only if some lane updates: the cast check does not look at the mask.
        self.checks.append(self.when_any(mask, [*self.pending, cst.Expr(call)]))
        self.pending = []
        return []

    def when_any(self, mask: cst.BaseExpression, body: list[cst.BaseSmallStatement]) -> cst.If:
        """``if np.any(mask): body``, its lines mapped to the current statement."""
        marker = self._marker(self.current_stmt)
        return cst.If(
            test=self.parse("np.any({m})", m=mask),
            body=cst.IndentedBlock([_marked_line(s, marker) for s in body]),
        )


_BINOP_FOR_AUG = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.FloorDivideAssign: cst.FloorDivide,
    cst.ModuloAssign: cst.Modulo,
    cst.PowerAssign: cst.Power,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply,
    cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr,
    cst.BitXorAssign: cst.BitXor,
    cst.LeftShiftAssign: cst.LeftShift,
    cst.RightShiftAssign: cst.RightShift,
}


_VIEW_ATTRIBUTES = frozenset({"T", "mT", "real", "imag"})
# Functions and methods whose result may share memory with their first argument
# (or, as methods, with the array they are called on).
_VIEW_CALLS = frozenset(
    {
        "swapaxes",
        "transpose",
        "permute_dims",
        "matrix_transpose",
        "moveaxis",
        "rollaxis",
        "reshape",
        "ravel",
        "squeeze",
        "expand_dims",
        "diagonal",
        "broadcast_to",
        "asarray",
        "asanyarray",
        "ascontiguousarray",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "flip",
        "fliplr",
        "flipud",
        "rot90",
        "real",
        "imag",
        "view",
        "split",
        "array_split",
        "hsplit",
        "vsplit",
        "dsplit",
        "unstack",
        "broadcast_arrays",
        "as_strided",
        "sliding_window_view",
    }
)


def _view_roots(expr: cst.BaseExpression) -> set[str]:
    """The names ``expr`` may be a view of (or another name for): the root of a
    chain of items, slices, view attributes (``.T``) and view-making calls."""
    while True:
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Attribute):
            if expr.attr.value not in _VIEW_ATTRIBUTES:
                return set()  # b.shape, b.dtype, np.pi: not views
            expr = expr.value
        elif isinstance(expr, cst.Call) and isinstance(expr.func, (cst.Name, cst.Attribute)):
            func = expr.func
            called = func.value if isinstance(func, cst.Name) else func.attr.value
            if called not in _VIEW_CALLS:
                return set()
            roots = _view_roots(func.value) if isinstance(func, cst.Attribute) else set()
            if expr.args:
                roots |= _view_roots(expr.args[0].value)  # np.swapaxes(b, ...)
            return roots  # b.reshape(...): the receiver
        elif isinstance(expr, cst.Name):
            return {expr.value}
        else:
            return set()


def _select_roots(expr: cst.BaseExpression) -> set[str]:
    """The names ``expr`` may be (or view), through the branches of ``a if c else b``
    and ``a or b``."""
    if isinstance(expr, cst.IfExp):
        return _select_roots(expr.body) | _select_roots(expr.orelse)
    if isinstance(expr, cst.BooleanOperation):
        return _select_roots(expr.left) | _select_roots(expr.right)
    return _view_roots(expr)


def _view_of(fn: cst.CSTNode, name: str, params: set[str]) -> str | None:
    """A name that may share memory with ``name``: bound to a view of it, or
    ``name`` bound to a view of that name (a write through one reaches the other).
    Only the function's own names count (``params`` and what it assigns), not
    modules (``np.swapaxes(a, ...)`` is rooted at ``np`` too)."""
    found: list[str] = []
    local = set(params)

    class Locals(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            local.update(_target_names(node.target))

    class Finder(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            roots = _view_roots(node.value)
            targets = [n for t in node.targets for n in _target_names(t.target)]
            if name in roots:
                found.extend(n for n in targets if n != name)  # v = b[::2]
            if name in targets:
                found.extend(r for r in roots & local if r != name)  # b = a[:2]

    fn.visit(Locals())
    fn.visit(Finder())
    return found[0] if found else None


def _items_in_unpacking(node: cst.Assign) -> bool:
    """One unpacking target (no starred element) with an item or nested unpacking."""
    if len(node.targets) != 1:
        return False
    target = node.targets[0].target
    if not isinstance(target, (cst.Tuple, cst.List)):
        return False
    elems = target.elements
    if any(isinstance(e, cst.StarredElement) for e in elems):
        return False
    return any(
        isinstance(e.value, cst.Subscript)
        or (
            isinstance(e.value, (cst.Tuple, cst.List))
            and _items_in_unpacking(cst.Assign([cst.AssignTarget(e.value)], node.value))
        )
        for e in elems
    )


def _dotted(node: cst.BaseExpression) -> str | None:
    """``self.R`` as the text "self.R" (a chain of names and attributes), else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _state_uses(fn: cst.CSTNode, path: str, base: str) -> list[cst.CSTNode]:
    """The places in ``fn`` that may read the object state ``path`` (``self.R``, on the
    object ``base``): the chain itself or a longer one, a method call ``base.m(...)``, and
    ``base`` passed to a call."""
    out: list[cst.CSTNode] = []
    for attr in libcst.matchers.findall(fn, libcst.matchers.Attribute()):
        chain = _dotted(attr)  # type: ignore[arg-type]
        if chain is not None and (chain == path or chain.startswith(path + ".")):
            out.append(attr)
    for call in libcst.matchers.findall(fn, libcst.matchers.Call()):
        assert isinstance(call, cst.Call)
        func = call.func
        if isinstance(func, cst.Attribute) and _dotted(func.value) == base:
            out.append(call)
        elif any(_dotted(a.value) == base for a in call.args):
            out.append(call)
    return out


def _has_batched_scalar(val: Val) -> bool:
    if val.kind == TREE:
        kids = [v for _, v in val.children] + ([val.element] if val.element else [])
        return any(_has_batched_scalar(v) for v in kids)
    return val.batched and val.kind in (ARRAY, SCALAR) and val.rank != 1 and not val.rank


def _one_subscript_target(node: cst.Assign) -> bool:
    return len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Subscript)


def _is_flat(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == "flat"
