"""Start the local web app; `python launch.py --help` lists the options."""

from __future__ import annotations

import logging
import sys

from app.settings import SettingsError, build_parser, settings_from_args


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = settings_from_args(args)
    except SettingsError as error:
        logging.getLogger("app").error("%s", error)
        return 2

    # Imported only now: the app module sets gradio's environment before gradio loads.
    from app import launch

    try:
        launch(settings)
    except SettingsError as error:
        logging.getLogger("app").error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
