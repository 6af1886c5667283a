"""From painted latents to what a user watches: decode, composite, play order, sink.

It owns the decode strategies (each frame in full, or only what changed, within a stated bound),
the white-canvas and stroke-map compositing, the order frames are played in (joins, holds,
ping-pong), the float-to-byte conversion, one writer per file format and the atomic file sink. It may
import the engine; never the tools or ComfyUI (a VAE reaches it as callables and plain torch modules).
"""
