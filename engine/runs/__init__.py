from engine.runs.folder import RunFolder, RunStatus


__all__ = ["RunFolder", "RunStatus"]
