"""The traffic simulator: simulated agencies and citizens using the platform from outside.

It acts only through the agency package (`panjereh_agency`, each simulated agency with
the credentials the platform issued it) and the services' public HTTP APIs, so what it
does, a real agency or citizen could do; `python -m simulator` runs it.
"""
