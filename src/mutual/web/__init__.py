"""The web: browser pages, the REST API and the FHIR endpoint, a thin shell over ``mutual.app`` like the CLI."""
