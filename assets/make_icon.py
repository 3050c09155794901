"""Draw assets/icon.png, the app's page icon (served by the app itself: no request leaves the
machine): an RNN's gradient falling away and an LSTM's staying level, on a log scale.

    python assets/make_icon.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE, SCALE = 64, 4  # drawn 4x larger, then shrunk: smooth lines


def main() -> None:
    big = SIZE * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=14 * SCALE, fill=(255, 255, 255, 255))
    width = 5 * SCALE
    left, right, top, bottom = 10 * SCALE, 54 * SCALE, 14 * SCALE, 52 * SCALE
    draw.line((left, top + 2 * SCALE, right, top), fill="#F28E2B", width=width)  # kept: the open cell path
    draw.line((left, bottom, right, top), fill="#E15759", width=width)  # lost: the RNN
    image.resize((SIZE, SIZE), Image.LANCZOS).save(Path(__file__).with_name("icon.png"))


if __name__ == "__main__":
    main()
