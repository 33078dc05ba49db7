"""`handrail serve`: the review inbox, a server-rendered web app over `handrail.review`."""
