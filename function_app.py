"""The simgate Function App: builds the app and registers every blueprint, nothing else."""

import azure.functions as func

from blueprints.cases import bp as cases_bp
from blueprints.dispatch import bp as dispatch_bp
from blueprints.jobs import bp as jobs_bp
from blueprints.openapi import bp as openapi_bp
from blueprints.outputs import bp as outputs_bp
from blueprints.reports import bp as reports_bp
from blueprints.studies import bp as studies_bp
from blueprints.ui import bp as ui_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(cases_bp)
app.register_functions(jobs_bp)
app.register_functions(outputs_bp)
app.register_functions(reports_bp)
app.register_functions(studies_bp)
app.register_functions(openapi_bp)
app.register_functions(dispatch_bp)
app.register_functions(ui_bp)
