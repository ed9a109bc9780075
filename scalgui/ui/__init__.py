"""The Qt user interface: widgets, pyqtgraph views, tools, dialogs and worker threads."""
