"""Exchange service (مرکز ملی تبادل اطلاعات): data requests between agencies."""
