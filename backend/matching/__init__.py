"""Smart matching (智能研判): which services a household likely qualifies for, and why."""
