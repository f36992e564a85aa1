"""Frame-accurate cuts that re-encode only what frame accuracy needs (issue 26).

A cut of ``[start, end)`` from an H.264 source whose keyframes are all IDR pictures (closed GOPs) is
made of two parts joined in one MP4 stream:

* the source's own packets, copied, from the first frame in the interval (which must be a keyframe)
  up to, not including, the keyframe K of the GOP that holds the last frame before ``end``. With
  closed GOPs the packets before K in decode order are exactly the frames before K in presentation
  order, and none of them refers to K or later;
* the frames from K to the last frame before ``end``, decoded and re-encoded with libx264 (CRF 18,
  as the full re-encode) into a closed GOP of its own that starts with an IDR picture and has no
  B-frames, so its decode timestamps follow the copied part's.

Both parts live in one ``avcC`` sample entry: x264 writes its parameter sets under an id the source
does not use (x264's ``sps-id``), and the record holds the source's SPS/PPS and the tail's. The
decoder switches to the tail's at its IDR. Every frame keeps its source presentation time, shifted
so that the first frame is at 0, as the full re-encode does (:func:`egotask.data.transcode.plan_frames`).

Anything else is re-encoded whole (:func:`egotask.data.transcode.transcode`), and the result says
why: another codec, open GOPs, an interval that starts between keyframes, one GOP only, a pixel
format other than yuv420p, a profile other than Baseline/Main/High, Annex B extradata (MPEG-TS).
Each finished cut is checked: its frames' times equal the plan, and the frames around the junction
decode to the planned presentation times.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from egotask.data.transcode import JobResult, TranscodeSpec, plan_frames, tmp_path_for, transcode
from egotask.frames import FrameIndex, RefFilter, VideoError, decode_only, index_frames

COPY_TAIL = "copy+tail"
REENCODE = "reencode"
X264_PROFILES = {66: "baseline", 77: "main", 100: "high"}


class NotSpliceable(Exception):
    """Why a source needs the full re-encode (a reason, not an error)."""


@dataclass(frozen=True)
class AvcConfig:
    """An ``avcC`` record (ISO/IEC 14496-15), as the MP4 sample entry holds it."""

    profile: int
    compat: int
    level: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    trailer: bytes  # High-profile fields after the PPS (chroma format, bit depths), kept as they are

    @classmethod
    def parse(cls, data: bytes) -> AvcConfig:
        if len(data) < 7 or data[0] != 1:
            raise NotSpliceable("its extradata is not an avcC record (Annex B stream, e.g. MPEG-TS)")
        i, sps, pps = 6, [], []
        for count_at, out in ((5, sps), (None, pps)):
            if count_at is None:
                count_at, i = i, i + 1
            count = data[count_at] & (0x1F if out is sps else 0xFF)
            for _ in range(count):
                size = int.from_bytes(data[i:i + 2], "big")
                out.append(bytes(data[i + 2:i + 2 + size]))
                i += 2 + size
        if i > len(data) or not sps or not pps:
            raise NotSpliceable("its avcC record is malformed")
        return cls(data[1], data[2], data[3], (data[4] & 3) + 1, tuple(sps), tuple(pps), bytes(data[i:]))

    def build(self) -> bytes:
        out = bytearray([1, self.profile, self.compat, self.level, 0xFC | (self.length_size - 1),
                         0xE0 | len(self.sps)])
        for unit in self.sps:
            out += len(unit).to_bytes(2, "big") + unit
        out.append(len(self.pps))
        for unit in self.pps:
            out += len(unit).to_bytes(2, "big") + unit
        return bytes(out + self.trailer)


def _ue(data: bytes, bit: int) -> tuple[int, int]:
    """One unsigned Exp-Golomb value at ``bit``; the value and the bit after it."""
    zeros = 0
    while not data[(bit + zeros) // 8] >> (7 - (bit + zeros) % 8) & 1:
        zeros += 1
    bit += zeros + 1
    value = 0
    for _ in range(zeros):
        value = value << 1 | (data[bit // 8] >> (7 - bit % 8) & 1)
        bit += 1
    return (1 << zeros) - 1 + value, bit


def sps_id(unit: bytes) -> int:
    return _ue(unit, 8 + 24)[0]  # after the NAL header, profile_idc, constraint flags and level_idc


def pps_id(unit: bytes) -> int:
    return _ue(unit, 8)[0]


def annexb_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes of 3 or 4 bytes)."""
    units, i = [], data.find(b"\x00\x00\x01")
    while i != -1:
        begin = i + 3
        i = data.find(b"\x00\x00\x01", begin)
        unit = data[begin:] if i == -1 else data[begin:i]
        units.append(unit[:-1] if i != -1 and unit.endswith(b"\x00") else unit)
    return [u for u in units if u]


def length_prefixed(units: list[bytes], length_size: int) -> bytes:
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in units)


@dataclass(frozen=True)
class SplicePlan:
    first: int  # position (presentation order) of the cut's first frame
    key: int  # position of the keyframe the re-encoded tail starts at
    last: int  # position of the cut's last frame
    times: dict[int, float]  # position -> time in the cut (seconds)


def plan_splice(src: Path, index: FrameIndex, stream, start: float, end: float) -> SplicePlan:
    """Where the copy ends and the tail begins, or :class:`NotSpliceable` saying why not."""
    cc = stream.codec_context
    if cc.name != "h264":
        raise NotSpliceable(f"the codec is {cc.name}, not H.264")
    if not index.closed_gops:
        raise NotSpliceable("not every keyframe is an IDR picture (open GOPs)")
    if cc.format is None or cc.format.name != "yuv420p":
        raise NotSpliceable(f"the pixel format is {cc.format.name if cc.format else 'unknown'}, not yuv420p")
    plan = plan_frames(index.times, start, end - start, None)
    if not plan:
        raise VideoError(f"{src}: no frame in [{start:.3f}, {end:.3f})")
    first, last = min(plan), max(plan)
    if int(index.keyframe_of[first]) != first:
        raise NotSpliceable("the interval starts between keyframes")
    key = int(index.keyframe_of[last])
    if key <= first:
        raise NotSpliceable("the interval lies in one GOP: nothing to copy")
    return SplicePlan(first, key, last, plan)


def splice_cut(src: Path, dst: Path, start: float, end: float, *, crf: int = 18, preset: str = "veryfast",
               threads: int = 0) -> FrameIndex:
    """Write the copy+tail cut of ``[start, end)`` of ``src`` to ``dst`` (see the module's docstring);
    returns the cut's frame index."""
    index = index_frames(src)
    if index is None:
        raise NotSpliceable("the video stream has no timestamps")
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        plan = plan_splice(src, index, stream, start, end)
        config = AvcConfig.parse(bytes(stream.codec_context.extradata or b""))
        enc, merged = _tail_encoder(stream, config, crf, preset, threads)
        shift = int(index.pts[plan.first])
        tail_pts = [int(p) for p in index.pts[plan.key:plan.last + 1]]
        gaps = np.diff(index.pts[plan.key:min(plan.last + 2, len(index.pts))]).tolist()
        durations = dict(zip(tail_pts, gaps + [gaps[-1] if gaps else 0] * (len(tail_pts) - len(gaps)), strict=True))
        with av.open(str(dst), "w", format="mp4") as out:
            ostream = out.add_stream_from_template(stream)
            ostream.codec_context.extradata = merged.build()
            _copy_head(inp, stream, out, ostream, tail_pts[0], shift)

            def put(packets) -> None:
                for packet in packets:
                    data = length_prefixed([u for u in annexb_units(bytes(packet)) if u[0] & 0x1F not in (7, 8)],
                                           config.length_size)
                    copy = av.Packet(data)
                    copy.pts, copy.dts = packet.pts - shift, packet.dts - shift
                    copy.duration, copy.time_base = durations[packet.pts], stream.time_base
                    copy.is_keyframe = packet.is_keyframe
                    copy.stream = ostream
                    out.mux(copy)

            written = _encode_tail(inp, stream, enc, tail_pts, put)
            if written != len(tail_pts):
                raise VideoError(f"{src}: truncated or corrupt: {len(tail_pts) - written} of {len(tail_pts)} "
                                 "frames of the tail could not be decoded")
    return check_splice(dst, plan)


def _tail_encoder(stream: Any, config: AvcConfig, crf: int, preset: str, threads: int) -> tuple[Any, AvcConfig]:
    """An x264 encoder matching the source's profile, writing its parameter sets under an SPS id the source
    does not use, and the source's avcC with the tail's SPS/PPS added (one record holds both)."""
    profile = X264_PROFILES.get(config.profile)
    if profile is None:
        raise NotSpliceable(f"H.264 profile_idc {config.profile} (only Baseline, Main and High are re-encoded "
                            "to match)")
    taken = {sps_id(u) for u in config.sps} | {pps_id(u) for u in config.pps}
    free = next((i for i in range(1, 32) if i not in taken), None)
    if free is None:
        raise NotSpliceable("the source uses every SPS id")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
    enc.time_base = stream.time_base
    enc.framerate = stream.average_rate or stream.guessed_rate or Fraction(30)
    enc.flags |= av.codec.context.Flags.global_header  # parameter sets in extradata, not in the packets
    enc.options = {"crf": str(crf), "preset": preset, "profile": profile, "threads": str(threads),
                   "x264-params": f"sps-id={free}:bframes=0:keyint=infinite:open-gop=0"}
    enc.open()
    tail_units = annexb_units(bytes(enc.extradata))
    tail_sps = [u for u in tail_units if u[0] & 0x1F == 7]
    tail_pps = [u for u in tail_units if u[0] & 0x1F == 8]
    if len(tail_sps) != 1 or len(tail_pps) != 1 or sps_id(tail_sps[0]) != free:
        raise NotSpliceable("x264 did not write one SPS/PPS pair under the id asked for")
    merged = AvcConfig(config.profile, config.compat, max(config.level, tail_sps[0][3]), config.length_size,
                       config.sps + (tail_sps[0],), config.pps + (tail_pps[0],), config.trailer)
    return enc, merged


def _copy_head(inp: Any, stream: Any, out: Any, ostream: Any, key_pts: int, shift: int) -> None:
    """The copied part: every packet before the tail's keyframe K in decode order, from the first frame on."""
    for packet in inp.demux(stream):
        if packet.pts is None:
            continue
        if packet.pts == key_pts:
            break
        if packet.pts < shift:
            continue
        packet.pts -= shift
        packet.dts = None if packet.dts is None else packet.dts - shift
        packet.stream = ostream
        out.mux(packet)


def _encode_tail(inp: Any, stream: Any, enc: Any, tail_pts: list[int], put: Any) -> int:
    """The tail, K to the last frame before the end, decoded and re-encoded; returns the frames written."""
    inp.seek(tail_pts[0], stream=stream, backward=True, any_frame=False)
    stream.codec_context.thread_count = 1
    wanted = set(tail_pts)
    written = 0
    for frame in decode_only(inp, stream, wanted, RefFilter(stream)):
        if frame.pts not in wanted:
            if frame.pts is not None and frame.pts > tail_pts[-1]:
                break
            continue
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != (enc.width, enc.height):
            raise NotSpliceable(f"a frame at pts {frame.pts} is {frame.format.name} {frame.width}x{frame.height}")
        frame.pict_type = av.video.frame.PictureType.NONE  # x264 decides; only the first is an IDR
        frame.time_base = stream.time_base
        put(enc.encode(frame))
        written += 1
        if written == len(tail_pts):
            break
    put(enc.encode(None))
    return written


def check_splice(path: Path, plan: SplicePlan) -> FrameIndex:
    """The cut's frames are the plan's, at the plan's times, and the junction decodes; the cut's index."""
    got = index_frames(path)
    want = [plan.times[p] for p in sorted(plan.times)]
    if got is None or len(got.times) != len(want):
        raise VideoError(f"{path}: the cut holds {0 if got is None else len(got.times)} frames, "
                         f"expected {len(want)}")
    gap = float(np.max(np.abs(got.times - np.asarray(want))))
    if gap > 1e-3:
        raise VideoError(f"{path}: a frame of the cut is {gap:.4f}s from its source time")
    # Decode from the last copied GOP's keyframe through the end: every frame must come out, in order.
    from_pos = int(got.keyframe_of[plan.key - plan.first - 1])
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        if from_pos > 0:
            container.seek(int(got.pts[from_pos]), stream=stream, backward=True, any_frame=False)
        seen = [f.pts for f in container.decode(stream) if f.pts is not None and f.pts >= got.pts[from_pos]]
    if seen != [int(p) for p in got.pts[from_pos:]]:
        raise VideoError(f"{path}: the frames after the junction do not decode in order "
                         f"({len(seen)} of {len(got.pts) - from_pos})")
    return got


def cut_interval(src: Path, dst: Path, spec: TranscodeSpec, *, force: bool = False, threads: int = 0) -> JobResult:
    """The cut of ``[spec.start, spec.end)``: copy+tail where the source allows, else the full re-encode.

    The result's ``method`` says which, and its ``message`` why the full re-encode was needed.
    """
    began = time.perf_counter()
    src, dst = Path(src), Path(dst)
    start, end = spec.start or 0.0, spec.end
    reason = ""
    if end is not None and src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path_for(dst)
        try:
            made = splice_cut(src, tmp, start, end, crf=spec.crf, preset=spec.preset, threads=threads)
            os.replace(tmp, dst)
            return JobResult(str(src), str(dst), "done", "", float(made.duration), time.perf_counter() - began,
                             COPY_TAIL)
        except NotSpliceable as exc:
            reason = str(exc)
        except (VideoError, av.error.FFmpegError, OSError) as exc:  # a damaged splice: the full path decides
            reason = f"the copy+tail cut failed ({exc})"
        finally:
            tmp.unlink(missing_ok=True)
    result = transcode(src, dst, spec, force=True, threads=threads)
    result.method = REENCODE
    if result.status != "failed" and reason:
        result.message = reason
    return result
