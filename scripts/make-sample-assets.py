#!/usr/bin/env python3
"""make-sample-assets.py - regenerates examples/assets, the sample folder that the
loading_screen example loads, and examples/level_assets, the asset graph that the
level_viewer example loads.

    scripts/make-sample-assets.py            # (re)write both folders
    scripts/make-sample-assets.py --check    # exit 1 if a tree differs from the script
    scripts/make-sample-assets.py --out DIR  # write examples/assets somewhere else
    scripts/make-sample-assets.py --levels-out DIR   # and examples/level_assets

The files are checked in; this script is how they were made. Output is deterministic
(fixed seeds, no timestamps), so running it again gives the same bytes. The folder
mixes small JSON configs, text (GLSL, locale strings) and "binary-ish" files: made-up
texture, audio and font containers with a small header and patterned payloads
(colour blocks, tones, glyph bits) that git compresses well. Budget: at most 1.5 MiB
in all, sizes from about 100 bytes to 256 KiB. Python 3.8+, standard library only.

examples/level_assets is a small asset graph: two levels (JSON) that depend on images
(binary PPM, P6) and on sprites of two atlases (JSON naming a PPM and the sprites'
rectangles), addressed as "atlas/hero.atlas.json#idle". The levels share the tileset
and the hero atlas; the forest names an optional decal that does not exist. Budget:
768 KiB.
"""
import argparse
import json
import math
import os
import struct
import sys

BUDGET = 1536 * 1024  # bytes, whole folder
MAX_FILE = 256 * 1024
LEVELS_BUDGET = 768 * 1024  # bytes, examples/level_assets


class Rng:
    """xorshift32: tiny, deterministic across Python versions and platforms."""

    def __init__(self, seed):
        self.x = (seed & 0xFFFFFFFF) or 0x9E3779B9

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n


def seed_of(name):
    """FNV-1a of the file name: every file gets its own stream."""
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def js(obj):
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


# ---------------------------------------------------------------------------
# JSON configs
# ---------------------------------------------------------------------------

def level(n, w, h, enemies):
    r = Rng(seed_of("level%02d" % n))
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            if y == 0 or y == h - 1 or x == 0 or x == w - 1:
                row.append(1)  # wall
            else:
                v = r.below(100)
                row.append(2 if v < 8 else 3 if v < 10 else 0)  # crate, water, floor
        rows.append("".join(str(c) for c in row))
    return js({
        "name": "Level %d" % n,
        "id": "level%02d" % n,
        "music": "audio/music_loop.bin",
        "tileset": "textures/tiles.bin",
        "size": [w, h],
        "spawn": [1 + r.below(w - 2), 1 + r.below(h - 2)],
        "enemies": [{"kind": ["slime", "bat", "knight"][r.below(3)],
                     "at": [1 + r.below(w - 2), 1 + r.below(h - 2)],
                     "hp": 5 + r.below(20)} for _ in range(enemies)],
        "tiles": rows,
        "par_time_s": 60 + 15 * n,
    })


def theme():
    return js({
        "name": "default",
        "font": "fonts/ui_font.bin",
        "font_size": 18,
        "colors": {"background": "#10141c", "panel": "#1c2230", "text": "#e6e9ef",
                   "accent": "#f2a33a", "danger": "#e0524a", "ok": "#5ac26e"},
        "progress_bar": {"height": 12, "radius": 6, "fill": "accent", "track": "panel"},
        "padding": [12, 16],
        "button": {"height": 40, "radius": 8, "hover_tint": 0.12},
    })


def hud():
    return js({
        "health": {"anchor": "top-left", "offset": [16, 16], "icon": "textures/ui_icons.bin"},
        "score": {"anchor": "top-right", "offset": [-16, 16], "digits": 7},
        "minimap": {"anchor": "bottom-right", "size": [160, 160], "zoom": 2.0},
        "crosshair": False,
    })


def menu():
    return js({"items": ["play", "options", "credits", "quit"], "default": "play"})


def game_config():
    return js({
        "window": {"width": 1280, "height": 720, "vsync": True},
        "start_level": "levels/level01.json",
        "difficulty": "normal",
        "locale": "en",
        "audio": {"master": 0.8, "music": 0.6, "sfx": 1.0},
    })


def input_config():
    return js({"jump": "space", "fire": "mouse1", "pause": "escape",
               "move": ["w", "a", "s", "d"], "dead_zone": 0.15})


# ---------------------------------------------------------------------------
# Text: GLSL and locale strings
# ---------------------------------------------------------------------------

SHADERS = {
    "sprite_vert.glsl": """#version 330 core
// Sprite batch: one quad per instance, atlas rect in a_uv.
layout(location = 0) in vec2 a_pos;
layout(location = 1) in vec4 a_uv;
layout(location = 2) in vec4 a_color;
uniform mat4 u_view_proj;
out vec2 v_uv;
out vec4 v_color;
void main() {
    v_uv = a_uv.xy + a_uv.zw * (a_pos * 0.5 + 0.5);
    v_color = a_color;
    gl_Position = u_view_proj * vec4(a_pos, 0.0, 1.0);
}
""",
    "sprite_frag.glsl": """#version 330 core
in vec2 v_uv;
in vec4 v_color;
uniform sampler2D u_atlas;
out vec4 o_color;
void main() {
    vec4 texel = texture(u_atlas, v_uv);
    if (texel.a < 0.01) discard;
    o_color = texel * v_color;
}
""",
    "blur.glsl": """#version 330 core
// Separable 9-tap Gaussian; u_dir is (1/w, 0) or (0, 1/h).
in vec2 v_uv;
uniform sampler2D u_src;
uniform vec2 u_dir;
out vec4 o_color;
const float W[5] = float[](0.227027, 0.1945946, 0.1216216, 0.054054, 0.016216);
void main() {
    vec4 sum = texture(u_src, v_uv) * W[0];
    for (int i = 1; i < 5; ++i) {
        sum += texture(u_src, v_uv + u_dir * float(i)) * W[i];
        sum += texture(u_src, v_uv - u_dir * float(i)) * W[i];
    }
    o_color = sum;
}
""",
    "tonemap.glsl": """#version 330 core
in vec2 v_uv;
uniform sampler2D u_hdr;
uniform float u_exposure;
out vec4 o_color;
vec3 aces(vec3 x) {
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}
void main() {
    vec3 c = texture(u_hdr, v_uv).rgb * u_exposure;
    o_color = vec4(pow(aces(c), vec3(1.0 / 2.2)), 1.0);
}
""",
    "water.glsl": """#version 330 core
in vec2 v_uv;
uniform sampler2D u_tiles;
uniform float u_time;
out vec4 o_color;
void main() {
    vec2 uv = v_uv;
    uv.x += sin(uv.y * 40.0 + u_time * 2.0) * 0.004;
    uv.y += cos(uv.x * 35.0 + u_time * 1.7) * 0.004;
    vec3 deep = vec3(0.05, 0.18, 0.32);
    o_color = vec4(mix(texture(u_tiles, uv).rgb, deep, 0.35), 0.9);
}
""",
    "particles.glsl": """#version 330 core
// Point sprites; size falls off with age.
layout(location = 0) in vec3 a_pos;
layout(location = 1) in float a_age;
uniform mat4 u_view_proj;
uniform float u_size;
out float v_age;
void main() {
    v_age = a_age;
    gl_PointSize = u_size * (1.0 - a_age);
    gl_Position = u_view_proj * vec4(a_pos, 1.0);
}
""",
}

LOCALES = {
    "en": ["Loading...", "Press any key", "Play", "Options", "Quit", "Paused",
           "Game over", "New high score!", "Level complete", "Continue"],
    "fr": ["Chargement...", "Appuyez sur une touche", "Jouer", "Options", "Quitter",
           "Pause", "Partie terminée", "Nouveau record !", "Niveau terminé", "Continuer"],
    "de": ["Laden...", "Beliebige Taste drücken", "Spielen", "Optionen", "Beenden",
           "Pausiert", "Spiel vorbei", "Neuer Highscore!", "Level geschafft", "Weiter"],
}
KEYS = ["loading", "press_any_key", "menu.play", "menu.options", "menu.quit", "paused",
        "game_over", "high_score", "level_complete", "continue"]


def locale(lang):
    lines = ["# %s strings: key = text (UTF-8)" % lang]
    lines += ["%s = %s" % (k, v) for k, v in zip(KEYS, LOCALES[lang])]
    # tips shown on the loading screen, numbered so the file has some body
    for i in range(40):
        lines.append("tip.%02d = %s %d" % (i, LOCALES[lang][0].rstrip("."), i + 1))
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------
# Binary-ish: made-up containers with a header and a patterned payload
# ---------------------------------------------------------------------------

def texture(name, w, h):
    """'ATEX' v1, w, h, 4 bytes/pixel, then RGBA in 8x8 blocks of palette colours with a
    grid line: looks like a sprite sheet, and repeats enough that git stores it small."""
    r = Rng(seed_of(name))
    hdr = b"ATEX" + struct.pack("<HHHH", 1, w, h, 4)
    palette = [bytes((r.below(256), r.below(256), r.below(256), 255)) for _ in range(8)]
    bw = (w + 7) // 8
    blocks = [[palette[r.below(8)] for _ in range(bw)] for _ in range((h + 7) // 8)]
    grid = b"\x20\x20\x20\xff"
    px = bytearray()
    for y in range(h):
        row = blocks[y // 8]
        for x in range(w):
            px += grid if (x % 32 == 0 or y % 32 == 0) else row[x // 8]
    return hdr + bytes(px)


def audio(seconds, rate, periods):
    """'AAUD' v1, rate, channels=1, then 16-bit PCM: a chord of tones whose periods are
    whole numbers of samples, fading in steps (so the waveform repeats and packs well)."""
    n = int(seconds * rate)
    hdr = b"AAUD" + struct.pack("<HIH", 1, rate, 1)
    out = bytearray(n * 2)
    step = 4096
    for i in range(n):
        env = 1.0 - 0.8 * (i // step) * step / max(n - 1, 1)
        v = sum(math.sin(2 * math.pi * (i % p) / p) for p in periods) / len(periods)
        struct.pack_into("<h", out, i * 2, int(round(v * env * 12000)))
    return hdr + bytes(out)


def font(name, glyphs, cell):
    """'AFNT' v1, glyph count, cell size, then 1 bit per pixel glyph bitmaps."""
    r = Rng(seed_of(name))
    hdr = b"AFNT" + struct.pack("<HHH", 1, glyphs, cell)
    body = bytearray()
    for g in range(glyphs):
        for row in range(cell):
            bits = 0
            for col in range(cell):
                on = (col + row + g) % 5 == 0 or (row == cell - 2 and r.below(2))
                bits |= (1 if on else 0) << col
            body += bits.to_bytes((cell + 7) // 8, "little")
    return hdr + bytes(body)


# ---------------------------------------------------------------------------

def files():
    """Every file of the folder: relative path -> bytes. 36 files."""
    out = {}
    # (n, width, height, enemies): tiny to a few KiB
    for n, w, h, e in [(1, 12, 8, 1), (2, 20, 12, 3), (3, 24, 16, 4), (4, 32, 18, 6),
                       (5, 40, 22, 8), (6, 48, 24, 10), (7, 56, 30, 12), (8, 64, 32, 16)]:
        out["levels/level%02d.json" % n] = level(n, w, h, e)
    out["ui/theme.json"] = theme()
    out["ui/hud.json"] = hud()
    out["ui/menu.json"] = menu()
    out["config/game.json"] = game_config()
    out["config/input.json"] = input_config()
    for name, src in SHADERS.items():
        out["shaders/" + name] = src.encode()
    for lang in LOCALES:
        out["locale/%s.txt" % lang] = locale(lang)
    # 12-byte header + w*h*4: 16,396 bytes for 64x64; the atlas stays just under 256 KiB
    for name, w, h in [("hero_atlas", 256, 255), ("tiles", 256, 128), ("background", 192, 128),
                       ("enemies", 128, 128), ("props", 128, 64), ("ui_icons", 64, 64),
                       ("particles", 32, 32), ("cursor", 16, 16)]:
        out["textures/%s.bin" % name] = texture(name, w, h)
    # periods in samples at 16 kHz: 64 = 250 Hz, 48 = 333 Hz, 32 = 500 Hz, ...
    for name, sec, periods in [("music_loop", 6.0, [64, 48, 40]), ("ambience", 3.0, [128, 96]),
                               ("jump", 0.6, [32]), ("hit", 0.3, [80, 60]),
                               ("coin", 0.12, [16, 12])]:
        out["audio/%s.bin" % name] = audio(sec, 16000, periods)
    out["fonts/ui_font.bin"] = font("ui_font", 96, 16)
    return out


# ---------------------------------------------------------------------------
# examples/level_assets: levels -> images and atlas sprites (level_viewer.c)
# ---------------------------------------------------------------------------

def ppm(name, w, h, cell):
    """Binary PPM (P6, 8 bits): cell x cell blocks of palette colours with a dark
    outline, like a sheet of sprites or tiles; repeats enough that git stores it small."""
    r = Rng(seed_of(name))
    palette = [bytes((r.below(256), r.below(256), r.below(256))) for _ in range(6)]
    cols = (w + cell - 1) // cell
    blocks = [[palette[r.below(6)] for _ in range(cols)] for _ in range((h + cell - 1) // cell)]
    edge = b"\x18\x18\x20"
    px = bytearray()
    for y in range(h):
        row = blocks[y // cell]
        for x in range(w):
            px += edge if (x % cell == 0 or y % cell == 0) else row[x // cell]
    return b"P6\n%d %d\n255\n" % (w, h) + bytes(px)


def atlas(image, cell, names):
    """An atlas: its image (relative to the atlas) and one rectangle per sprite,
    [x, y, w, h] in pixels, cells laid out row by row on a 4-wide grid."""
    return js({"image": image,
               "sprites": {n: [(i % 4) * cell, (i // 4) * cell, cell, cell]
                           for i, n in enumerate(names)}})


def level_doc(name, size, background, sprites, decals):
    """A level: images and sprites it needs, relative to the level file. "decals" are
    optional: the level loads without them."""
    return js({"name": name, "size": size, "tileset": "../textures/tiles.ppm",
               "background": background, "sprites": sprites, "decals": decals})


def level_files():
    """Every file of examples/level_assets: relative path -> bytes. 11 files."""
    out = {}
    hero = ["idle", "run1", "run2", "jump", "fall", "hurt"]
    items = ["coin", "gem", "key", "heart"]
    out["atlas/hero.atlas.json"] = atlas("hero.ppm", 32, hero)
    out["atlas/hero.ppm"] = ppm("hero", 128, 64, 32)
    out["atlas/items.atlas.json"] = atlas("items.ppm", 16, items)
    out["atlas/items.ppm"] = ppm("items", 64, 16, 16)
    out["textures/tiles.ppm"] = ppm("tiles", 256, 128, 16)
    out["textures/forest_sky.ppm"] = ppm("forest_sky", 320, 180, 20)
    out["textures/cave_wall.ppm"] = ppm("cave_wall", 256, 160, 32)
    out["textures/drip.ppm"] = ppm("drip", 32, 32, 8)
    out["levels/forest.level.json"] = level_doc(
        "Forest", [40, 12], "../textures/forest_sky.ppm",
        {"player": "../atlas/hero.atlas.json#idle", "player_run": "../atlas/hero.atlas.json#run1",
         "player_jump": "../atlas/hero.atlas.json#jump", "pickup": "../atlas/items.atlas.json#coin",
         "bonus": "../atlas/items.atlas.json#heart"},
        ["../textures/moss.ppm"])  # no such file: optional
    out["levels/cave.level.json"] = level_doc(
        "Cave", [32, 16], "../textures/cave_wall.ppm",
        {"player": "../atlas/hero.atlas.json#idle", "player_hurt": "../atlas/hero.atlas.json#hurt",
         "pickup": "../atlas/items.atlas.json#gem", "door_key": "../atlas/items.atlas.json#key"},
        ["../textures/drip.ppm"])
    out["README.txt"] = (
        "Made by scripts/make-sample-assets.py for examples/level_viewer.c: two levels\n"
        "that depend on images (binary PPM) and on sprites of two atlases. Do not edit;\n"
        "change the script and run it again.\n").encode()
    return out


def check_or_write(fs, out, check, budget, label):
    """Writes fs into out (or, with check, compares); returns the exit status."""
    total = sum(len(b) for b in fs.values())
    biggest = max(len(b) for b in fs.values())
    if total > budget or biggest > MAX_FILE:
        sys.exit("make-sample-assets: %s: %d bytes in all (budget %d), largest %d (max %d)"
                 % (label, total, budget, biggest, MAX_FILE))
    out = os.path.normpath(out)
    stale = []
    if os.path.isdir(out):
        for dirpath, _, names in os.walk(out):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), out).replace(os.sep, "/")
                if rel not in fs:
                    stale.append(rel)

    if check:
        bad = list(stale)
        for rel, data in sorted(fs.items()):
            p = os.path.join(out, rel)
            try:
                with open(p, "rb") as f:
                    if f.read() != data:
                        bad.append(rel)
            except OSError:
                bad.append(rel)
        for rel in bad:
            print("differs: %s/%s" % (label, rel), file=sys.stderr)
        return 1 if bad else 0

    for rel, data in sorted(fs.items()):
        p = os.path.join(out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    print("wrote %d files, %d bytes (%.2f MiB), %d..%d bytes each, into %s"
          % (len(fs), total, total / 1048576.0, min(len(b) for b in fs.values()), biggest, out))
    for rel in stale:  # not deleted: this script only writes what it makes
        print("note: %s is not made by this script" % rel, file=sys.stderr)
    return 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "examples", "assets"),
                    help="output folder (default: examples/assets)")
    ap.add_argument("--levels-out", default=os.path.join(here, "..", "examples", "level_assets"),
                    help="output folder of the asset graph (default: examples/level_assets)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a folder differs from what this makes")
    args = ap.parse_args()
    rc = check_or_write(files(), args.out, args.check, BUDGET, "assets")
    rc |= check_or_write(level_files(), args.levels_out, args.check, LEVELS_BUDGET, "level_assets")
    return rc


if __name__ == "__main__":
    sys.exit(main())
