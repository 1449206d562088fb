"""Text of SCPI replies and messages: multi-query replies, error-queue entries, channel lists."""

from __future__ import annotations

#: What a verified message appends to read the first entry of the error queue.
ERR_QUERY = "SYST:ERR?"


def join_commands(cmds: list[str]) -> str:
    """One program message from several commands, each after the first from the root (``;:``;
    a common command such as ``*CLS`` needs no colon: ``*RST;*CLS``)."""
    return cmds[0] + "".join(";" + (c if c.startswith((":", "*")) else ":" + c) for c in cmds[1:])


def split_reply(reply: str) -> list[str]:
    """The answers of a multi-query message: ``reply`` split at every ``;`` outside double
    quotes (``'1,2;-221,"a; b"'`` -> ``['1,2', '-221,"a; b"']``)."""
    parts = reply.split(";")
    if len(parts) == 1 or '"' not in reply:
        return parts
    out: list[str] = []
    cur = parts[0]
    odd = cur.count('"') & 1  # inside quotes at the end of cur
    for p in parts[1:]:
        if odd:
            cur += ";" + p
        else:
            out.append(cur)
            cur = p
        odd ^= p.count('"') & 1
    out.append(cur)
    return out


def error_entry(reply: str) -> tuple[int, str]:
    """``'-222,"Data out of range"'`` -> ``(-222, "Data out of range")``; ValueError otherwise."""
    code_s, sep, msg = reply.strip().partition(",")
    if not sep:
        raise ValueError(reply)
    return int(code_s), msg.strip().strip('"')


def channel_list(channels: list[str]) -> str:
    """``["101", "102", "103", "105"]`` -> ``"(@101:103,105)"`` (ascending, ranges merged)."""
    nums = sorted(int(c) for c in channels)
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(f"{nums[i]}:{nums[j]}" if j > i else f"{nums[i]}")
        i = j + 1
    return "(@" + ",".join(parts) + ")"
